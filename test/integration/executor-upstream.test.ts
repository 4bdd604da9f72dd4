// Upstream mode through the executor, on PostgreSQL and on PGlite: what the application gets
// (method, path, query, headers, each body type re-encoded), what the core makes of its answer,
// its failures as stored answers, and at most one call per request id.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { Executor } from '../../core/executor.js';
import { NO_APPLICATION } from '../../core/load-application.js';
import { checkUpstreams } from '../../core/upstream/targets.js';
import type { Envelope } from '../../lib/envelope.js';
import { freePort } from '../../lib/free-port.js';
import { silentLogger } from '../../lib/log.js';
import { DATABASE_KINDS, openTestDatabase, type DatabaseKind } from '../helpers/core.js';
import { makeEnvelope } from '../helpers/envelope.js';
import { keyedId } from '../helpers/idempotency.js';
import { createTestPki, usePki } from '../helpers/pki.js';
import { sendJsonAnswer, startTestUpstream, type Responder } from '../helpers/upstream.js';

const page = (over: Partial<Envelope> = {}): Envelope =>
  makeEnvelope({ route: 'site.page', method: 'GET', path: '/page', ...over });

interface Setup {
  readonly executor: Executor;
  readonly calls: () => number;
  readonly received: { method: string; url: string; headers: Record<string, unknown>; body: Buffer }[];
  readonly db: Awaited<ReturnType<typeof openTestDatabase>>;
}

async function setup(
  t: TestContext,
  kind: DatabaseKind,
  responder: Responder,
  options: { timeoutMs?: number; maxResponseBytes?: number; url?: string } = {},
): Promise<Setup> {
  const db = await openTestDatabase(t, kind);
  const upstream = await startTestUpstream(t, responder);
  const targets = checkUpstreams([
    {
      url: options.url ?? upstream.url,
      routes: ['site.*'],
      timeoutMs: options.timeoutMs ?? 5000,
      maxResponseBytes: options.maxResponseBytes ?? 1024 * 1024,
    },
  ]);
  t.after(() => targets.forEach((u) => u.agent.destroy()));
  const executor = new Executor(db, NO_APPLICATION, silentLogger(), { upstreams: targets });
  return { executor, calls: () => upstream.calls(), received: upstream.received, db };
}

const html = '<!doctype html><p>Grüße</p>';

for (const kind of DATABASE_KINDS) {
  describe(`upstream on ${kind}`, () => {
    test('JSON answer: status, body parsed, headers lowercased, hop-by-hop dropped, cookies', async (t) => {
      const s = await setup(t, kind, (_req, res) =>
        sendJsonAnswer(
          res,
          201,
          { ok: true },
          {
            'X-App': 'yes',
            Connection: 'close',
            'Keep-Alive': 'timeout=5',
            'Proxy-Authenticate': 'Basic',
            'Set-Cookie': ['a=1; Path=/; HttpOnly', 'b=2; Secure'],
          },
        ),
      );
      const envelope = page({
        query: { q: 'a b', tag: ['x', 'y'] },
        headers: { 'user-agent': 'test/1', connection: 'keep-alive', 'accept-encoding': 'gzip' },
        clientIp: '198.18.0.77',
      });
      const { replayed, response } = await s.executor.execute(envelope);
      assert.equal(replayed, false);
      assert.equal(response.status, 201);
      assert.deepEqual(response.body, { ok: true });
      assert.equal(response.content, undefined);
      assert.deepEqual(response.cookies, ['a=1; Path=/; HttpOnly', 'b=2; Secure']);
      assert.equal(response.headers['x-app'], 'yes');
      for (const h of ['connection', 'keep-alive', 'proxy-authenticate', 'set-cookie', 'content-type']) {
        assert.equal(response.headers[h], undefined, h);
      }
      const got = s.received[0]!;
      assert.equal(got.method, 'GET');
      assert.equal(got.url, '/page?q=a+b&tag=x&tag=y');
      assert.equal(got.headers['x-request-id'], envelope.id);
      assert.equal(got.headers['idempotency-key'], envelope.id);
      assert.equal(got.headers['x-forwarded-for'], '198.18.0.77');
      assert.equal(got.headers['x-nonstop-gateway'], 'gw1');
      assert.equal(got.headers['user-agent'], 'test/1');
      assert.equal(got.headers['accept-encoding'], undefined);
      assert.notEqual(got.headers.connection, 'keep-alive');
      assert.equal(got.body.length, 0);
    });

    test('HTML answer becomes content with its type and bytes; a replay does not call again', async (t) => {
      const s = await setup(t, kind, (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'set-cookie': 'sid=abc; HttpOnly' });
        res.end(html);
      });
      const envelope = page();
      const first = await s.executor.execute(envelope);
      assert.equal(first.response.body, null);
      assert.equal(first.response.content?.type, 'text/html; charset=utf-8');
      assert.equal(Buffer.from(first.response.content.base64, 'base64').toString('utf8'), html);
      assert.deepEqual(first.response.cookies, ['sid=abc; HttpOnly']);
      const again = await s.executor.execute(envelope);
      assert.equal(again.replayed, true);
      assert.deepEqual(again.response, first.response);
      assert.equal(s.calls(), 1, 'the replay came from the database');
    });

    test('a JSON body, a form and a text body are re-encoded as the client sent them', async (t) => {
      const s = await setup(t, kind, (_req, res) => sendJsonAnswer(res, 200, {}));
      const post = (body: unknown, bodyType?: Envelope['bodyType']) =>
        s.executor.execute(
          page({
            route: 'site.post',
            method: 'POST',
            path: '/post',
            body,
            ...(bodyType ? { bodyType } : {}),
          }),
        );
      await post({ a: [1, 2], b: 'c' });
      await post({ name: 'Zoë & co', tags: ['a', 'b'] }, 'form');
      await post('hello, wörld', 'text');
      const [json, form, text] = s.received;
      assert.equal(json!.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(json!.body.toString()), { a: [1, 2], b: 'c' });
      assert.equal(form!.headers['content-type'], 'application/x-www-form-urlencoded');
      const fields = new URLSearchParams(form!.body.toString());
      assert.equal(fields.get('name'), 'Zoë & co');
      assert.deepEqual(fields.getAll('tags'), ['a', 'b']);
      assert.equal(text!.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(text!.body.toString('utf8'), 'hello, wörld');
      assert.equal(Number(text!.headers['content-length']), Buffer.byteLength('hello, wörld'));
    });

    test('a multipart body is sent as multipart/form-data with the files’ bytes', async (t) => {
      const s = await setup(t, kind, (_req, res) => sendJsonAnswer(res, 200, {}));
      const bytes = Buffer.from([0, 1, 2, 255, 13, 10, 45, 45]);
      await s.executor.execute(
        page({
          route: 'site.upload',
          method: 'POST',
          path: '/upload',
          bodyType: 'multipart',
          body: {
            caption: 'a cat',
            photo: {
              filename: 'cat.bin',
              type: 'application/octet-stream',
              size: bytes.length,
              base64: bytes.toString('base64'),
            },
          },
        }),
      );
      const got = s.received[0]!;
      const type = String(got.headers['content-type']);
      assert.match(type, /^multipart\/form-data; boundary=/);
      // Parsed back with the platform's own multipart parser.
      const form = await new Response(got.body, { headers: { 'content-type': type } }).formData();
      assert.equal(form.get('caption'), 'a cat');
      const photo = form.get('photo') as File;
      assert.equal(photo.name, 'cat.bin');
      assert.equal(photo.type, 'application/octet-stream');
      assert.deepEqual(Buffer.from(await photo.arrayBuffer()), bytes);
    });

    test('no answer within timeoutMs: 504 UPSTREAM_TIMEOUT, stored, not called again', async (t) => {
      const s = await setup(t, kind, () => undefined, { timeoutMs: 300 });
      const envelope = page();
      const first = await s.executor.execute(envelope);
      assert.equal(first.response.status, 504);
      assert.equal(
        (first.response.body as { error: { code: string } }).error.code,
        'NONSTOP_ERR_UPSTREAM_TIMEOUT',
      );
      const again = await s.executor.execute(envelope);
      assert.equal(again.replayed, true);
      assert.deepEqual(again.response, first.response);
      assert.equal(s.calls(), 1);
    });

    test('an answer larger than maxResponseBytes: 502 UPSTREAM_ANSWER_TOO_LARGE', async (t) => {
      const s = await setup(
        t,
        kind,
        (_req, res) => {
          // Chunked, no content-length: the core stops reading at the limit.
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          res.write(Buffer.alloc(1500));
          res.end(Buffer.alloc(1500));
        },
        { maxResponseBytes: 2048 },
      );
      const { response } = await s.executor.execute(page());
      assert.equal(response.status, 502);
      assert.equal(
        (response.body as { error: { code: string } }).error.code,
        'NONSTOP_ERR_UPSTREAM_ANSWER_TOO_LARGE',
      );
    });

    test('connection refused: 502 UPSTREAM_UNREACHABLE', async (t) => {
      const s = await setup(t, kind, () => undefined, { url: `http://127.0.0.1:${await freePort()}` });
      const { response } = await s.executor.execute(page());
      assert.equal(response.status, 502);
      assert.equal(
        (response.body as { error: { code: string } }).error.code,
        'NONSTOP_ERR_UPSTREAM_UNREACHABLE',
      );
    });

    test('a started row without an answer (the outcome lost): outcome-unknown, never called', async (t) => {
      const s = await setup(t, kind, (_req, res) => sendJsonAnswer(res, 200, { called: true }));
      const envelope = page();
      // What a core that died mid-call leaves behind: the started row, its time over.
      await s.db.query(
        `INSERT INTO nonstop_requests (id, route, gateway_id, received_at_ms, upstream_until_ms)
         VALUES ($1, $2, $3, $4, $5)`,
        [envelope.id, envelope.route, envelope.gatewayId, envelope.receivedAt, Date.now() - 1],
      );
      const first = await s.executor.execute(envelope);
      assert.equal(first.response.status, 502);
      assert.equal(
        (first.response.body as { error: { code: string } }).error.code,
        'NONSTOP_ERR_UPSTREAM_OUTCOME_UNKNOWN',
      );
      const again = await s.executor.execute(envelope);
      assert.equal(again.replayed, true);
      assert.deepEqual(again.response, first.response);
      assert.equal(s.calls(), 0);
    });

    test('a started row still in its time: the delivery waits for it, then outcome-unknown', async (t) => {
      const s = await setup(t, kind, (_req, res) => sendJsonAnswer(res, 200, { called: true }));
      const envelope = page();
      const until = Date.now() + 400;
      await s.db.query(
        `INSERT INTO nonstop_requests (id, route, gateway_id, received_at_ms, upstream_until_ms)
         VALUES ($1, $2, $3, $4, $5)`,
        [envelope.id, envelope.route, envelope.gatewayId, envelope.receivedAt, until],
      );
      const { response } = await s.executor.execute(envelope);
      assert.ok(Date.now() >= until, 'it waited for the call in flight to end');
      assert.equal(
        (response.body as { error: { code: string } }).error.code,
        'NONSTOP_ERR_UPSTREAM_OUTCOME_UNKNOWN',
      );
      assert.equal(s.calls(), 0);
    });

    test('concurrent deliveries of one id call once and all get its answer', async (t) => {
      const s = await setup(t, kind, (_req, res) => {
        setTimeout(() => sendJsonAnswer(res, 200, { n: Math.random() }), 300);
      });
      const envelope = page({ route: 'site.post', method: 'POST', path: '/post', body: { x: 1 } });
      const results = await Promise.all(Array.from({ length: 8 }, () => s.executor.execute(envelope)));
      assert.equal(s.calls(), 1);
      assert.equal(results.filter((r) => !r.replayed).length, 1);
      for (const r of results) assert.deepEqual(r.response, results[0]!.response);
      assert.equal(results[0]!.response.status, 200);
    });

    test('a keyed id replays to another gateway for the same request, 422 for another', async (t) => {
      const s = await setup(t, kind, (_req, res) => sendJsonAnswer(res, 200, { done: true }));
      const envelope = page({
        id: keyedId(`up-${kind}`),
        idempotent: true,
        route: 'site.post',
        method: 'POST',
        path: '/post',
        body: { x: 1 },
      });
      const first = await s.executor.execute(envelope);
      const other = await s.executor.execute({ ...envelope, gatewayId: 'gw2', clientIp: '198.18.0.99' });
      assert.equal(other.replayed, true);
      assert.deepEqual(other.response, first.response);
      await assert.rejects(s.executor.execute({ ...envelope, body: { x: 2 } }), /reused/i);
      assert.equal(s.calls(), 1);
    });
  });
}

describe('upstream over https', () => {
  const pki = usePki();

  async function httpsUpstream(t: TestContext): Promise<string> {
    const server = createHttpsServer(
      { cert: readFileSync(pki().core.cert), key: readFileSync(pki().core.key) },
      (_req, res) => sendJsonAnswer(res, 200, { secure: true }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  test('with the CA that signed its certificate it is called; with another CA, 502', async (t) => {
    const db = await openTestDatabase(t, 'postgres');
    const url = await httpsUpstream(t);
    const run = async (ca: string) => {
      const targets = checkUpstreams([
        { url, ca, routes: ['site.*'], timeoutMs: 5000, maxResponseBytes: 4096 },
      ]);
      t.after(() => targets.forEach((u) => u.agent.destroy()));
      return new Executor(db, NO_APPLICATION, silentLogger(), { upstreams: targets }).execute(page());
    };
    const good = await run(pki().ca.cert);
    assert.deepEqual(good.response.body, { secure: true });
    const other = await createTestPki();
    t.after(() => other.remove());
    const bad = await run(other.ca.cert);
    assert.equal(bad.response.status, 502);
    assert.equal(
      (bad.response.body as { error: { code: string } }).error.code,
      'NONSTOP_ERR_UPSTREAM_FAILED',
    );
  });
});
