// Static files answered by a real gateway from a folder: types, caching, conditionals, ranges,
// precompressed variants, and every way out of the folder refused, with nothing ever queued.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { tempDir } from '../helpers/files.js';
import { rawGet, startTestGateway, untilReady, type RawAnswer } from '../helpers/gateway.js';
import { usePki } from '../helpers/pki.js';
import { testRedis, type TestRedis } from '../helpers/redis.js';

const get = rawGet;
type Answer = RawAnswer;

function rawRequest(port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(bytes));
    let out = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (out += d));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

function errorCode(a: Answer): string {
  return (JSON.parse(a.body.toString('utf8')) as { error: { code: string } }).error.code;
}

const APP_JS = 'console.log("app");\n'.repeat(50);
const BIG = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
const MTIME = new Date('2026-01-02T03:04:05Z');

/** A folder of assets, a folder with an index page, and things that must never be served. */
function makeFiles(t: TestContext): { assets: string; site: string; outside: string } {
  const root = tempDir(t);
  const assets = join(root, 'assets');
  const site = join(root, 'site');
  const outside = join(root, 'outside');
  for (const d of [assets, site, outside, join(assets, 'sub'), join(site, 'docs')]) mkdirSync(d);
  const files: Record<string, string | Buffer> = {
    'app.js': APP_JS,
    'app.js.br': brotliCompressSync(APP_JS),
    'app.js.gz': gzipSync(APP_JS),
    'app.3f2a9c1b.js': 'hashed',
    'app-BfC7sD2a.css': 'body{}',
    'style.css': 'p{}',
    'data.json': '{}',
    'logo.svg': '<svg/>',
    'image.png': Buffer.from([0x89, 0x50, 0x4e, 0x47]),
    'font.woff2': 'w',
    'module.wasm': 'w',
    'app.webmanifest': '{}',
    'unknown.xyz': 'x',
    'big.bin': BIG,
    'empty.txt': '',
    '.env': 'SECRET=1',
    'sub/inner.txt': 'inner',
  };
  for (const [name, content] of Object.entries(files)) writeFileSync(join(assets, name), content);
  for (const name of Object.keys(files)) utimesSync(join(assets, name), MTIME, MTIME);
  writeFileSync(join(outside, 'secret.txt'), 'outside the folder');
  symlinkSync(join(outside, 'secret.txt'), join(assets, 'escape.txt'));
  symlinkSync(outside, join(assets, 'escape-dir'));
  symlinkSync(join(assets, 'style.css'), join(assets, 'alias.css'));
  symlinkSync(join(assets, '.env'), join(assets, 'env.txt'));
  execFileSync('mkfifo', [join(assets, 'pipe.txt')]);
  writeFileSync(join(site, 'index.html'), '<h1>home</h1>');
  writeFileSync(join(site, 'docs', 'index.html'), '<h1>docs</h1>');
  return { assets, site, outside };
}

async function startStatic(t: TestContext, overrides: Record<string, unknown> = {}) {
  const redis = testRedis(t);
  const dirs = makeFiles(t);
  const gw = await startTestGateway(t, {
    prefix: redis.prefix,
    overrides: {
      static: [
        { path: '/assets/', dir: dirs.assets, maxAgeSeconds: 120 },
        { path: '/site/', dir: dirs.site, index: true },
      ],
      ...overrides,
    },
  });
  await untilReady(gw.url);
  return { ...gw, port: gw.gateway.http!.port, redis, dirs };
}

/** Only the queue's own metadata, written when the gateway connected: no job, no counter. */
async function assertNothingQueued(redis: TestRedis): Promise<void> {
  assert.deepEqual(
    await redis.keys(),
    [`${redis.prefix}:gw-gw1:meta`],
    'a static answer must not touch the queue',
  );
}

test('content types, nosniff and cache lifetimes (hashed names immutable)', async (t) => {
  const { port, redis } = await startStatic(t);
  const types: Record<string, string> = {
    'style.css': 'text/css; charset=utf-8',
    'data.json': 'application/json; charset=utf-8',
    'logo.svg': 'image/svg+xml; charset=utf-8',
    'image.png': 'image/png',
    'font.woff2': 'font/woff2',
    'module.wasm': 'application/wasm',
    'app.webmanifest': 'application/manifest+json; charset=utf-8',
    'unknown.xyz': 'application/octet-stream',
    'app.3f2a9c1b.js': 'text/javascript; charset=utf-8',
  };
  for (const [name, type] of Object.entries(types)) {
    const a = await get(port, `/assets/${name}`);
    assert.equal(a.status, 200, name);
    assert.equal(a.headers['content-type'], type, name);
    assert.equal(a.headers['x-content-type-options'], 'nosniff', name);
    assert.equal(a.headers['accept-ranges'], 'bytes', name);
  }
  assert.equal((await get(port, '/assets/style.css')).headers['cache-control'], 'public, max-age=120');
  for (const hashed of ['app.3f2a9c1b.js', 'app-BfC7sD2a.css']) {
    assert.equal(
      (await get(port, `/assets/${hashed}`)).headers['cache-control'],
      'public, max-age=31536000, immutable',
    );
  }
  // The second mount takes the default lifetime; a query string does not change the file.
  const site = await get(port, '/site/index.html?v=2');
  assert.equal(site.headers['cache-control'], 'public, max-age=300');
  assert.equal(site.body.toString(), '<h1>home</h1>');
  const inner = await get(port, '/assets/sub/inner.txt');
  assert.equal(inner.body.toString(), 'inner');
  assert.equal(inner.headers['content-length'], '5');
  const empty = await get(port, '/assets/empty.txt');
  assert.equal(empty.status, 200);
  assert.equal(empty.body.length, 0);
  // A symlink to a file inside the folder is that file.
  assert.equal((await get(port, '/assets/alias.css')).body.toString(), 'p{}');
  await assertNothingQueued(redis);
});

test('ETag and Last-Modified give 304 without a body; If-None-Match wins over If-Modified-Since', async (t) => {
  const { port, redis } = await startStatic(t);
  const first = await get(port, '/assets/style.css');
  const etag = first.headers.etag!;
  assert.match(etag, /^"[A-Za-z0-9_-]{22}"$/, 'a tag from the content');
  assert.equal(first.headers['last-modified'], MTIME.toUTCString());

  const same = await get(port, '/assets/style.css', { 'if-none-match': etag });
  assert.equal(same.status, 304);
  assert.equal(same.body.length, 0);
  assert.equal(same.headers.etag, etag);
  assert.equal(same.headers['cache-control'], 'public, max-age=120');
  assert.equal(
    (await get(port, '/assets/style.css', { 'if-none-match': `"x", W/${etag}` })).status,
    304,
    'weak comparison, list',
  );
  assert.equal((await get(port, '/assets/style.css', { 'if-none-match': '*' })).status, 304);
  assert.equal((await get(port, '/assets/style.css', { 'if-none-match': '"other"' })).status, 200);

  assert.equal(
    (await get(port, '/assets/style.css', { 'if-modified-since': MTIME.toUTCString() })).status,
    304,
  );
  const later = new Date(MTIME.getTime() + 60_000).toUTCString();
  assert.equal((await get(port, '/assets/style.css', { 'if-modified-since': later })).status, 304);
  const earlier = new Date(MTIME.getTime() - 60_000).toUTCString();
  assert.equal((await get(port, '/assets/style.css', { 'if-modified-since': earlier })).status, 200);
  assert.equal((await get(port, '/assets/style.css', { 'if-modified-since': 'not a date' })).status, 200);

  // A non-matching If-None-Match decides: If-Modified-Since is not looked at.
  const both = await get(port, '/assets/style.css', {
    'if-none-match': '"other"',
    'if-modified-since': later,
  });
  assert.equal(both.status, 200);
  // And a matching one decides too, even with an old If-Modified-Since.
  assert.equal(
    (await get(port, '/assets/style.css', { 'if-none-match': etag, 'if-modified-since': earlier })).status,
    304,
  );
  await assertNothingQueued(redis);
});

test('ETags come from the content: equal for equal files, new when a file changes', async (t) => {
  const { port, dirs } = await startStatic(t);
  // A copy made later (another gateway's deployment) has another mtime but the same tag.
  writeFileSync(join(dirs.assets, 'copy.css'), 'p{}');
  const original = await get(port, '/assets/style.css');
  const copy = await get(port, '/assets/copy.css');
  assert.notEqual(copy.headers['last-modified'], original.headers['last-modified']);
  assert.equal(copy.headers.etag, original.headers.etag);
  // Asked again, the tag is the cached one; rewritten, the file gets a new one.
  assert.equal((await get(port, '/assets/copy.css')).headers.etag, copy.headers.etag);
  writeFileSync(join(dirs.assets, 'copy.css'), 'p{color:red}');
  const changed = await get(port, '/assets/copy.css');
  assert.notEqual(changed.headers.etag, copy.headers.etag);
  assert.equal((await get(port, '/assets/copy.css', { 'if-none-match': copy.headers.etag! })).status, 200);
  assert.equal((await get(port, '/assets/copy.css', { 'if-none-match': changed.headers.etag! })).status, 304);
});

test('single ranges get 206, unsatisfiable ones 416, several ranges or a stale If-Range the whole file', async (t) => {
  const { port, redis } = await startStatic(t);
  const a = await get(port, '/assets/big.bin', { range: 'bytes=10-19' });
  assert.equal(a.status, 206);
  assert.equal(a.headers['content-range'], 'bytes 10-19/1000');
  assert.deepEqual(a.body, BIG.subarray(10, 20));
  const open = await get(port, '/assets/big.bin', { range: 'bytes=990-' });
  assert.equal(open.headers['content-range'], 'bytes 990-999/1000');
  assert.deepEqual(open.body, BIG.subarray(990));
  const suffix = await get(port, '/assets/big.bin', { range: 'bytes=-5' });
  assert.equal(suffix.headers['content-range'], 'bytes 995-999/1000');
  assert.equal(suffix.headers['content-length'], '5');
  const clipped = await get(port, '/assets/big.bin', { range: 'bytes=900-5000' });
  assert.equal(clipped.headers['content-range'], 'bytes 900-999/1000');

  const past = await get(port, '/assets/big.bin', { range: 'bytes=1000-' });
  assert.equal(past.status, 416);
  assert.equal(past.headers['content-range'], 'bytes */1000');
  assert.equal(errorCode(past), 'NONSTOP_ERR_RANGE_NOT_SATISFIABLE');

  const several = await get(port, '/assets/big.bin', { range: 'bytes=0-1,5-6' });
  assert.equal(several.status, 200);
  assert.equal(several.body.length, 1000);
  assert.equal(
    (await get(port, '/assets/big.bin', { range: 'items=0-1' })).status,
    200,
    'another unit is ignored',
  );

  const etag = a.headers.etag!;
  const fresh = await get(port, '/assets/big.bin', { range: 'bytes=0-0', 'if-range': etag });
  assert.equal(fresh.status, 206);
  const stale = await get(port, '/assets/big.bin', { range: 'bytes=0-0', 'if-range': '"stale"' });
  assert.equal(stale.status, 200);
  assert.equal(stale.body.length, 1000);
  assert.equal(
    (await get(port, '/assets/big.bin', { range: 'bytes=0-0', 'if-range': `W/${etag}` })).status,
    200,
    'a weak tag never matches If-Range',
  );
  assert.equal(
    (await get(port, '/assets/big.bin', { range: 'bytes=0-0', 'if-range': MTIME.toUTCString() })).status,
    206,
  );
  const newer = new Date(MTIME.getTime() + 1000).toUTCString();
  assert.equal((await get(port, '/assets/big.bin', { range: 'bytes=0-0', 'if-range': newer })).status, 200);
  await assertNothingQueued(redis);
});

test('precompressed variants by Accept-Encoding (q=0 honoured), with Vary and their own ETags', async (t) => {
  const { port, redis } = await startStatic(t);
  const br = await get(port, '/assets/app.js', { 'accept-encoding': 'gzip, br' });
  assert.equal(br.headers['content-encoding'], 'br');
  assert.equal(br.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal(br.headers.vary, 'Accept-Encoding');
  assert.deepEqual(br.body, brotliCompressSync(APP_JS));

  const gz = await get(port, '/assets/app.js', { 'accept-encoding': 'gzip, br;q=0' });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.deepEqual(gz.body, gzipSync(APP_JS));
  const preferred = await get(port, '/assets/app.js', { 'accept-encoding': 'br;q=0.5, gzip;q=0.9' });
  assert.equal(preferred.headers['content-encoding'], 'gzip');

  const plain = await get(port, '/assets/app.js', { 'accept-encoding': 'identity' });
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.headers.vary, 'Accept-Encoding', 'the identity answer varies too');
  assert.equal(plain.body.toString(), APP_JS);
  const none = await get(port, '/assets/app.js', { 'accept-encoding': 'br;q=0, gzip;q=0' });
  assert.equal(none.headers['content-encoding'], undefined);
  const star = await get(port, '/assets/app.js', { 'accept-encoding': '*;q=0' });
  assert.equal(star.headers['content-encoding'], undefined);

  assert.notEqual(br.headers.etag, plain.headers.etag);
  assert.notEqual(br.headers.etag, gz.headers.etag);
  assert.equal(
    (await get(port, '/assets/app.js', { 'accept-encoding': 'br', 'if-none-match': br.headers.etag! }))
      .status,
    304,
  );

  // A Range request is answered from the identity file.
  const range = await get(port, '/assets/app.js', { 'accept-encoding': 'br', range: 'bytes=0-6' });
  assert.equal(range.status, 206);
  assert.equal(range.headers['content-encoding'], undefined);
  assert.equal(range.body.toString(), 'console');

  // A file without variants does not vary.
  assert.equal((await get(port, '/assets/style.css', { 'accept-encoding': 'br' })).headers.vary, undefined);
  await assertNothingQueued(redis);
});

test('HEAD has the headers of GET and no body; other methods get 405; framing refused as for routes', async (t) => {
  const { port, url, redis } = await startStatic(t);
  const g = await get(port, '/assets/big.bin');
  const h = await get(port, '/assets/big.bin', {}, 'HEAD');
  assert.equal(h.status, 200);
  assert.equal(h.body.length, 0);
  for (const name of [
    'content-type',
    'content-length',
    'etag',
    'last-modified',
    'cache-control',
    'accept-ranges',
  ]) {
    assert.equal(h.headers[name], g.headers[name], name);
  }
  assert.equal(h.headers['content-length'], '1000');
  for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
    const a = await get(port, '/assets/style.css', {}, method);
    assert.equal(a.status, 405, method);
    assert.equal(a.headers.allow, 'GET, HEAD');
    assert.equal(errorCode(a), 'NONSTOP_ERR_METHOD_NOT_ALLOWED');
  }
  // What the gateway refuses before routing, it refuses here too.
  const withBody = await rawRequest(
    port,
    Buffer.from('GET /assets/style.css HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc'),
  );
  assert.match(withBody, /^HTTP\/1\.1 400 .*connection: close/is);
  const chunked10 = await rawRequest(
    port,
    Buffer.from('GET /assets/style.css HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'),
  );
  assert.match(chunked10, /^HTTP\/1\.1 400/);
  const many: Record<string, string> = {};
  for (let i = 0; i < 80; i++) many[`x-h${i}`] = 'v';
  // (fetch: node:http's own client gets a bare 400 for 80 headers, from routes just the same.)
  assert.equal((await fetch(`${url}/assets/style.css`, { headers: many })).status, 431);
  assert.equal((await get(port, `/assets/${'a'.repeat(9000)}`)).status, 414);
  await assertNothingQueued(redis);
});

test('traversal, dotfiles, symlinks out, FIFOs and folders are refused', async (t) => {
  const { port, redis } = await startStatic(t);
  const bad = [
    '/assets/../outside/secret.txt',
    '/assets/sub/../../outside/secret.txt',
    '/assets/%2e%2e/outside/secret.txt',
    '/assets/%2E%2E/outside/secret.txt',
    '/assets/.%2e/outside/secret.txt',
    '/assets/..%2foutside%2fsecret.txt',
    '/assets/sub%2finner.txt',
    '/assets/..%5coutside%5csecret.txt',
    '/assets/..\\outside\\secret.txt',
    '/assets/style.css%00.png',
    '/assets/%E0%A4%A',
    '/assets/./style.css',
    '/assets//style.css',
  ];
  for (const path of bad) {
    const a = await get(port, path);
    assert.equal(a.status, 400, path);
    assert.equal(errorCode(a), 'NONSTOP_ERR_BAD_REQUEST', path);
  }
  const raw = await rawRequest(
    port,
    Buffer.from('GET /assets/style.css\0 HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'),
  );
  assert.match(raw, /^HTTP\/1\.1 400/, 'a raw NUL is refused');

  const missing = [
    '/assets/.env',
    '/assets/%2eenv',
    '/assets/env.txt', // a symlink to the dotfile
    '/assets/escape.txt', // a symlink out of the folder
    '/assets/escape-dir/secret.txt',
    '/assets/pipe.txt', // not a regular file
    '/assets/sub', // a folder
    '/assets/sub/', // a folder, and this mount has no index
    '/assets/',
    '/assets/nothing.js',
    '/assets/style.css/x',
  ];
  for (const path of missing) {
    const a = await get(port, path);
    assert.equal(a.status, 404, path);
    assert.equal(errorCode(a), 'NONSTOP_ERR_NOT_FOUND', path);
    assert.equal(a.headers['cache-control'], 'no-store', path);
    assert.ok(!a.body.toString().includes('outside') && !a.body.toString().includes('SECRET'), path);
  }
  await assertNothingQueued(redis);
});

test('a mount with index serves index.html for paths ending in "/", never a listing', async (t) => {
  const { port, url, redis } = await startStatic(t);
  const home = await get(port, '/site/');
  assert.equal(home.status, 200);
  assert.equal(home.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(home.body.toString(), '<h1>home</h1>');
  assert.equal((await get(port, '/site/docs/')).body.toString(), '<h1>docs</h1>');
  assert.equal((await get(port, '/site/docs')).status, 404, 'a folder without "/" is not its index');
  // The gateway's own endpoints and routes still answer.
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  assert.equal((await fetch(`${url}/readyz`)).status, 200);
  assert.equal(
    (await fetch(`${url}/notes`, { method: 'PUT' })).status,
    405,
    'routes still go to the route table',
  );
  await assertNothingQueued(redis);
});

test('a client that goes away mid-file does not stop the gateway', async (t) => {
  const { port, dirs, redis } = await startStatic(t);
  writeFileSync(join(dirs.assets, 'large.bin'), Buffer.alloc(8 * 1024 * 1024, 7));
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/assets/large.bin', agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve() : reject(err)));
    req.end();
  });
  // The gateway runs in this process: its descriptor of the file must be closed once the
  // client is gone (the stream destroyed), not held until the 8 MiB are read.
  const large = join(dirs.assets, 'large.bin');
  const openOnLarge = () =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === large;
      } catch {
        return false;
      }
    }).length;
  const deadline = Date.now() + 3000;
  while (openOnLarge() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(openOnLarge(), 0, 'the file is closed after the client went away');
  const after = await get(port, '/assets/large.bin', { range: 'bytes=0-3' });
  assert.equal(after.status, 206);
  assert.deepEqual(after.body, Buffer.alloc(4, 7));
  await assertNothingQueued(redis);
});

describe('over HTTPS', () => {
  const pki = usePki();
  test('static answers carry HSTS like every other HTTPS answer', async (t) => {
    const redis = testRedis(t);
    const dirs = makeFiles(t);
    const gw = await startTestGateway(t, {
      prefix: redis.prefix,
      overrides: {
        https: { host: '127.0.0.1', port: 0, cert: pki().gateways.gw1!.cert, key: pki().gateways.gw1!.key },
        static: [{ path: '/assets/', dir: dirs.assets }],
      },
    });
    const answer = (path: string) =>
      new Promise<{ status: number; headers: IncomingHttpHeaders }>((resolve, reject) => {
        const req = httpsRequest(
          { host: '127.0.0.1', port: gw.gateway.https!.port, path, rejectUnauthorized: false, agent: false },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    const ok = await answer('/assets/style.css');
    assert.equal(ok.status, 200);
    assert.match(ok.headers['strict-transport-security'] ?? '', /^max-age=\d+/);
    const missing = await answer('/assets/nothing');
    assert.equal(missing.status, 404);
    assert.match(missing.headers['strict-transport-security'] ?? '', /^max-age=\d+/);
  });
});

test('mounts are checked at start: missing folder, a file, nesting, and shadowed routes', async (t) => {
  const dirs = makeFiles(t);
  const start = (mounts: unknown[]) =>
    startTestGateway(t, { prefix: 'never', redisPort: 1, overrides: { static: mounts } });
  await assert.rejects(
    start([{ path: '/a/', dir: join(dirs.assets, 'nope') }]),
    /field "static\[0\]\.dir" must be an existing folder/,
  );
  await assert.rejects(
    start([{ path: '/a/', dir: join(dirs.assets, 'style.css') }]),
    /field "static\[0\]\.dir" must be a folder/,
  );
  await assert.rejects(
    start([
      { path: '/a/', dir: dirs.assets },
      { path: '/a/b/', dir: dirs.site },
    ]),
    /field "static\[1\]\.path" "\/a\/b\/" and static\[0\]\.path "\/a\/" must not lie one inside the other/,
  );
  await assert.rejects(
    start([
      { path: '/a/', dir: dirs.assets },
      { path: '/a/', dir: dirs.site },
    ]),
    /field "static\[1\]\.path" "\/a\/" is static\[0\]\.path too/,
  );
  // The example route table has /notes/:id: a mount at /notes/ would take it.
  await assert.rejects(start([{ path: '/notes/', dir: dirs.assets }]), /would shadow route "notes\.get"/);
  await assert.rejects(start([{ path: '/', dir: dirs.assets }]), /would take \/healthz from the gateway/);
  await assert.rejects(start([{ path: '/a', dir: dirs.assets }]), /static\[0\]\.path/);
  await assert.rejects(start([{ path: '/a/../', dir: dirs.assets }]), /static\[0\]\.path/);
  await assert.rejects(start([{ path: '/a/', dir: 'relative' }]), /static\[0\]\.dir/);
});
