// Response compression by a real gateway: application replies in br or gzip by Accept-Encoding
// (decoding back to the same bytes, with Vary, their own ETags and 304s), never for routes whose
// answers may mix a cookie's secret with what an attacker sent unless the route opts in; static
// files compressed once and cached (or streamed when big), images and fonts never. A BullMQ
// worker in the test stands in for the broker.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { Worker, type Job } from 'bullmq';
import { replyKey, queueName, type Envelope, type Reply } from '../../lib/envelope.js';
import { tempDir, writeJson } from '../helpers/files.js';
import { rawGet, startTestGateway, untilReady, type RawAnswer } from '../helpers/gateway.js';
import { REDIS_HOST, REDIS_PORT, testRedis } from '../helpers/redis.js';
import { addReply } from '../helpers/replies.js';

const get = rawGet;
type Answer = RawAnswer;

/** The body as the client reads it after undoing Content-Encoding. */
function decoded(a: Answer): string {
  const coding = a.headers['content-encoding'];
  const bytes =
    coding === 'br' ? brotliDecompressSync(a.body) : coding === 'gzip' ? gunzipSync(a.body) : a.body;
  return bytes.toString('utf8');
}

const ENTRIES = { entries: Array.from({ length: 100 }, (_, i) => ({ id: i, title: `entry number ${i}` })) };
const ENTRIES_JSON = JSON.stringify(ENTRIES);
const PAGE = `<!doctype html><title>page</title>${'<p>a paragraph of the page</p>'.repeat(100)}`;
const html = { type: 'text/html; charset=utf-8', base64: Buffer.from(PAGE).toString('base64') };

const routes = {
  kind: 'routes',
  routes: [
    { name: 'api.entries', method: 'GET', path: '/entries', schema: {} },
    { name: 'api.small', method: 'GET', path: '/small', schema: {} },
    { name: 'api.raw', method: 'GET', path: '/raw', schema: {} },
    { name: 'site.page', method: 'GET', path: '/page', cookies: ['session'], schema: {} },
    { name: 'site.login', method: 'GET', path: '/login', schema: {} },
    { name: 'site.public', method: 'GET', path: '/public', cookies: ['session'], compress: true, schema: {} },
    { name: 'api.never', method: 'GET', path: '/never', compress: false, schema: {} },
  ],
};

function answer(e: Envelope): Omit<Reply, 'id'> {
  switch (e.path) {
    case '/entries':
    case '/never':
      return { status: 200, headers: { etag: '"e1"', vary: 'Origin' }, body: ENTRIES };
    case '/small':
      return { status: 200, headers: {}, body: { ok: true } };
    case '/raw':
      return { status: 200, headers: { 'cache-control': 'no-transform' }, body: ENTRIES };
    case '/login':
      return { status: 200, headers: {}, body: null, content: html, cookies: ['session=s3cr3t; HttpOnly'] };
    default:
      return { status: 200, headers: { etag: 'W/"p1"' }, body: null, content: html };
  }
}

async function system(t: TestContext, overrides: Record<string, unknown> = {}) {
  const redis = testRedis(t);
  const dir = tempDir(t);
  const routesFile = writeJson(dir, 'routes.json', routes);
  const assets = join(dir, 'assets');
  const files = staticFiles(assets);
  const gw = await startTestGateway(t, {
    prefix: redis.prefix,
    overrides: {
      routes: routesFile,
      static: [{ path: '/assets/', dir: assets }],
      // Files over 8 KiB (cacheBytes/8) are compressed as they are sent.
      compression: { static: { cacheBytes: 65536 } },
      ...overrides,
    },
  });
  const worker = new Worker(
    queueName('gw1'),
    async (job: Job) => {
      const e = job.data as Envelope;
      const reply: Reply = { id: e.id, ...answer(e) };
      await addReply(redis.client, replyKey(redis.prefix, e.gatewayId, e.replyTo), reply);
    },
    { connection: { host: REDIS_HOST, port: REDIS_PORT }, prefix: redis.prefix },
  );
  t.after(() => worker.close());
  await untilReady(gw.url);
  return { port: gw.gateway.http!.port, files };
}

function staticFiles(assets: string) {
  const css = `body { margin: 0 }\n${'.c { color: red; padding: 1px }\n'.repeat(100)}`;
  const bigJs = Array.from({ length: 3000 }, (_, i) => `console.log(${(i * 7919) % 100000});`).join('\n');
  // Bytes that do not compress: what a PNG or a woff2 holds.
  const noise = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) % 251));
  const content: Record<string, string | Buffer> = {
    'style.css': css,
    'big.js': bigJs,
    'image.png': noise,
    'font.woff2': noise,
  };
  mkdirSync(assets);
  for (const [name, bytes] of Object.entries(content)) writeFileSync(join(assets, name), bytes);
  return { css, bigJs };
}

describe('response compression', () => {
  test('a JSON reply: br for "br, gzip", gzip for "gzip", none for identity or no header; same body', async (t) => {
    const { port } = await system(t);
    const br = await get(port, '/entries', { 'accept-encoding': 'br, gzip' });
    assert.equal(br.status, 200);
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(br.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(Number(br.headers['content-length']), br.body.length);
    assert.ok(br.body.length < ENTRIES_JSON.length / 3, 'smaller on the wire');
    assert.equal(decoded(br), ENTRIES_JSON);
    assert.equal(br.headers.vary, 'Origin, Accept-Encoding', "the application's Vary kept");
    assert.equal(br.headers.etag, '"e1-br"');

    const gz = await get(port, '/entries', { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(Number(gz.headers['content-length']), gz.body.length);
    assert.equal(decoded(gz), ENTRIES_JSON);
    assert.equal(gz.headers.etag, '"e1-gzip"');

    const cases: Record<string, string>[] = [
      { 'accept-encoding': 'identity' },
      {},
      { 'accept-encoding': 'br;q=0, gzip;q=0' },
    ];
    for (const headers of cases) {
      const plain = await get(port, '/entries', headers);
      assert.equal(plain.headers['content-encoding'], undefined, JSON.stringify(headers));
      assert.equal(plain.body.toString(), ENTRIES_JSON);
      assert.equal(Number(plain.headers['content-length']), ENTRIES_JSON.length);
      assert.equal(plain.headers.vary, 'Origin, Accept-Encoding', 'the identity answer varies too');
      assert.equal(plain.headers.etag, '"e1"');
    }
    const preferred = await get(port, '/entries', { 'accept-encoding': 'br;q=0.5, gzip' });
    assert.equal(preferred.headers['content-encoding'], 'gzip');
  });

  test('revalidation: each representation by its own tag; HEAD has the headers without a body', async (t) => {
    const { port } = await system(t);
    const same = await get(port, '/entries', { 'accept-encoding': 'br', 'if-none-match': '"e1-br"' });
    assert.equal(same.status, 304);
    assert.equal(same.body.length, 0);
    assert.equal(same.headers.etag, '"e1-br"');
    assert.equal(same.headers.vary, 'Origin, Accept-Encoding');
    const other = await get(port, '/entries', { 'accept-encoding': 'br', 'if-none-match': '"e1"' });
    assert.equal(other.status, 200, 'the identity tag does not validate the br bytes');
    assert.equal(other.headers['content-encoding'], 'br');
    const identity = await get(port, '/entries', { 'if-none-match': '"e1"' });
    assert.equal(identity.status, 304);
    assert.equal(identity.headers.etag, '"e1"');
    const weak = await get(port, '/public', { 'accept-encoding': 'gzip', 'if-none-match': 'W/"p1-gzip"' });
    assert.equal(weak.status, 304, 'a weak tag stays weak with its suffix');

    const head = await get(port, '/entries', { 'accept-encoding': 'br' }, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-encoding'], 'br');
    assert.equal(head.headers.etag, '"e1-br"');
    assert.equal(head.headers.vary, 'Origin, Accept-Encoding');
    assert.equal(head.headers['content-type'], 'application/json; charset=utf-8');
  });

  test('never compressed: small bodies, no-transform, routes that opt out', async (t) => {
    const { port } = await system(t);
    const small = await get(port, '/small', { 'accept-encoding': 'br, gzip' });
    assert.equal(small.headers['content-encoding'], undefined);
    assert.equal(small.headers.vary, undefined, 'under minBytes the answer never depends on the header');
    assert.equal(small.body.toString(), '{"ok":true}');
    const raw = await get(port, '/raw', { 'accept-encoding': 'br, gzip' });
    assert.equal(raw.headers['content-encoding'], undefined);
    assert.equal(raw.body.toString(), ENTRIES_JSON);
    const never = await get(port, '/never', { 'accept-encoding': 'br, gzip' });
    assert.equal(never.headers['content-encoding'], undefined);
    assert.equal(never.headers.vary, 'Origin');
  });

  test('BREACH: routes that read cookies and replies that set them are not compressed unless the route opts in', async (t) => {
    const { port } = await system(t);
    const page = await get(port, '/page', { 'accept-encoding': 'br, gzip', cookie: 'session=abc' });
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-encoding'], undefined, 'the route takes a cookie');
    assert.equal(page.headers.vary, undefined);
    assert.equal(page.body.toString(), PAGE);
    const login = await get(port, '/login', { 'accept-encoding': 'br, gzip' });
    assert.deepEqual(login.headers['set-cookie'], ['session=s3cr3t; HttpOnly']);
    assert.equal(login.headers['content-encoding'], undefined, 'the reply sets a cookie');
    const optIn = await get(port, '/public', { 'accept-encoding': 'br, gzip', cookie: 'session=abc' });
    assert.equal(optIn.headers['content-encoding'], 'br', 'the route opted in');
    assert.equal(decoded(optIn), PAGE);
    assert.equal(optIn.headers.etag, 'W/"p1-br"');
  });

  test('the route table decides for routes without their own setting', async (t) => {
    const dir = tempDir(t);
    const table = writeJson(dir, 'routes-all.json', { ...routes, compress: true });
    const { port } = await system(t, { routes: table });
    const page = await get(port, '/page', { 'accept-encoding': 'gzip', cookie: 'session=abc' });
    assert.equal(page.headers['content-encoding'], 'gzip');
    assert.equal(decoded(page), PAGE);
    const never = await get(port, '/never', { 'accept-encoding': 'gzip' });
    assert.equal(never.headers['content-encoding'], undefined, "the route's own false wins");
  });

  test('"compression": { "enabled": false } compresses nothing', async (t) => {
    const { port } = await system(t, { compression: { enabled: false } });
    const a = await get(port, '/entries', { 'accept-encoding': 'br, gzip' });
    assert.equal(a.headers['content-encoding'], undefined);
    assert.equal(a.headers.vary, 'Origin');
    const css = await get(port, '/assets/style.css', { 'accept-encoding': 'br, gzip' });
    assert.equal(css.headers['content-encoding'], undefined);
  });

  test('static CSS: compressed once, its own ETag, 304 on revalidation; HEAD and ranges', async (t) => {
    const { port, files } = await system(t);
    const plain = await get(port, '/assets/style.css');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.headers.vary, 'Accept-Encoding');
    assert.equal(plain.body.toString(), files.css);
    const br = await get(port, '/assets/style.css', { 'accept-encoding': 'gzip, br' });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(br.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal(br.headers.vary, 'Accept-Encoding');
    assert.equal(Number(br.headers['content-length']), br.body.length);
    assert.equal(decoded(br), files.css);
    assert.equal(br.headers.etag, `${plain.headers.etag!.slice(0, -1)}-br"`);
    const gz = await get(port, '/assets/style.css', { 'accept-encoding': 'gzip' });
    assert.equal(decoded(gz), files.css);
    assert.notEqual(gz.headers.etag, br.headers.etag);
    // From the cache: the same bytes again.
    assert.deepEqual((await get(port, '/assets/style.css', { 'accept-encoding': 'br' })).body, br.body);

    const revalidated = await get(port, '/assets/style.css', {
      'accept-encoding': 'br',
      'if-none-match': br.headers.etag,
    });
    assert.equal(revalidated.status, 304);
    assert.equal(revalidated.body.length, 0);
    assert.equal(revalidated.headers.etag, br.headers.etag);
    assert.equal(revalidated.headers.vary, 'Accept-Encoding');
    const crossed = await get(port, '/assets/style.css', {
      'accept-encoding': 'br',
      'if-none-match': plain.headers.etag!,
    });
    assert.equal(crossed.status, 200, 'the identity tag does not validate the br variant');
    assert.equal(
      (await get(port, '/assets/style.css', { 'if-none-match': plain.headers.etag! })).status,
      304,
    );

    const head = await get(port, '/assets/style.css', { 'accept-encoding': 'br' }, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    for (const name of ['content-encoding', 'content-length', 'etag', 'vary', 'content-type'])
      assert.equal(head.headers[name], br.headers[name], name);

    const range = await get(port, '/assets/style.css', { 'accept-encoding': 'br', range: 'bytes=0-3' });
    assert.equal(range.status, 206);
    assert.equal(range.headers['content-encoding'], undefined);
    assert.equal(range.body.toString(), 'body');
  });

  test('a static file over the cache limit is compressed as it is sent', async (t) => {
    const { port, files } = await system(t);
    assert.ok(files.bigJs.length > 8192);
    const br = await get(port, '/assets/big.js', { 'accept-encoding': 'br' });
    assert.equal(br.status, 200);
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(br.headers['content-length'], undefined);
    assert.equal(br.headers['transfer-encoding'], 'chunked');
    assert.equal(decoded(br), files.bigJs);
    const gz = await get(port, '/assets/big.js', { 'accept-encoding': 'gzip' });
    assert.equal(decoded(gz), files.bigJs);
    const revalidated = await get(port, '/assets/big.js', {
      'accept-encoding': 'br',
      'if-none-match': br.headers.etag!,
    });
    assert.equal(revalidated.status, 304);
  });

  test('PNG and woff2 are never compressed and do not vary', async (t) => {
    const { port } = await system(t);
    for (const name of ['image.png', 'font.woff2']) {
      const a = await get(port, `/assets/${name}`, { 'accept-encoding': 'br, gzip' });
      assert.equal(a.status, 200, name);
      assert.equal(a.headers['content-encoding'], undefined, name);
      assert.equal(a.headers.vary, undefined, name);
      assert.equal(a.body.length, 4096, name);
    }
  });
});
