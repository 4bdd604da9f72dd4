// The sample web site in another language (core/app/guestbook/server.py, Python's standard
// library): its pages, its form, its session cookie, and a request id that signs once however
// often the core delivers it. Talked to directly here, as the core's upstream mode talks to it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/files.js';

const SERVER = fileURLToPath(new URL('../../../core/app/guestbook/server.py', import.meta.url));

async function guestbook(t: TestContext, args: string[] = []): Promise<string> {
  const child = spawn('python3', [SERVER, '--port', '0', '--db', join(tempDir(t), 'gb.sqlite3'), ...args], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  t.after(() => child.kill('SIGKILL'));
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  return `http://127.0.0.1:${(JSON.parse(line) as { listening: number }).listening}`;
}

const sign = (url: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(`${url}/entries`, {
    method: 'POST',
    body: new URLSearchParams(fields).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    redirect: 'manual',
  });

describe('the guestbook site', () => {
  test('signing redirects, sets a session, and the page greets and lists it, escaped', async (t) => {
    const url = await guestbook(t, ['--secure-cookies']);
    const empty = await fetch(url);
    assert.equal(empty.status, 200);
    assert.equal(empty.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(empty.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const html = await empty.text();
    assert.match(html, /<link rel=stylesheet href="\/assets\/guestbook.css">/);
    assert.match(html, /<form method=post action="\/entries">/);

    const signed = await sign(
      url,
      { name: 'Ada <script>', message: 'hello & welcome' },
      { 'idempotency-key': 'k1' },
    );
    assert.equal(signed.status, 303);
    assert.equal(signed.headers.get('location'), '/');
    const [cookie] = signed.headers.getSetCookie();
    assert.match(
      cookie ?? '',
      /^gb_session=[\w-]{20,}; Path=\/; Max-Age=2592000; HttpOnly; SameSite=Lax; Secure$/,
    );
    const session = cookie!.split(';')[0]!;

    const page = await (await fetch(url, { headers: { cookie: session } })).text();
    assert.match(page, /Welcome back, Ada &lt;script&gt;\./);
    assert.match(page, /<strong>Ada &lt;script&gt;<\/strong>/);
    assert.match(page, /<p>hello &amp; welcome<\/p>/);
    assert.doesNotMatch(page, /<script>/);
    assert.doesNotMatch(await (await fetch(url)).text(), /Welcome back/, 'no session, no greeting');
  });

  test('one request id signs once, whatever how often it comes; a bad form is answered 400', async (t) => {
    const url = await guestbook(t);
    const first = await sign(url, { name: 'Bo', message: 'once' }, { 'idempotency-key': 'same-id' });
    const again = await sign(url, { name: 'Bo', message: 'once' }, { 'idempotency-key': 'same-id' });
    assert.equal(again.status, 303);
    assert.equal(again.headers.getSetCookie()[0], first.headers.getSetCookie()[0], 'the same session');
    await sign(url, { name: 'Bo', message: 'twice' }, { 'idempotency-key': 'other-id' });
    const page = await (await fetch(url)).text();
    assert.equal(page.match(/<p>once<\/p>/g)?.length, 1);
    assert.equal(page.match(/<p>twice<\/p>/g)?.length, 1);

    const bad = await sign(url, { name: '', message: 'x' });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /Your name takes 1 to 40 characters/);
    const etag = (await fetch(url)).headers.get('etag');
    assert.ok(etag);
    assert.equal((await fetch(url, { method: 'HEAD' })).headers.get('etag'), etag);
  });
});
