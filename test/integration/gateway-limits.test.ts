// What the gateway refuses on its own: none of it may cost queue work.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { startTestGateway, untilReady } from '../helpers/gateway.js';
import { testRedis } from '../helpers/redis.js';
import { startOwnRedis } from '../helpers/redis-server.js';

async function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(text));
    let out = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (out += d));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

test('refusals are answered by the gateway and never reach Redis', async (t) => {
  const redis = testRedis(t);
  const { url } = await startTestGateway(t, {
    prefix: redis.prefix,
    overrides: { limits: { maxBodyBytes: 1024 } },
  });
  await untilReady(url);

  const notFound = await fetch(`${url}/nothing-here`);
  assert.equal(notFound.status, 404);
  assert.equal(((await notFound.json()) as { error: { code: string } }).error.code, 'NONSTOP_ERR_NOT_FOUND');

  const wrongMethod = await fetch(`${url}/notes`, { method: 'PUT' });
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers.get('allow'), 'GET, POST, HEAD, OPTIONS');

  const huge = await fetch(`${url}/notes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'x'.repeat(5000) }),
  });
  assert.equal(huge.status, 413);

  const notJson = await fetch(`${url}/notes`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: 'hi',
  });
  assert.equal(notJson.status, 415);

  const malformed = await fetch(`${url}/notes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"title": ',
  });
  assert.equal(malformed.status, 400);
  assert.equal(
    ((await malformed.json()) as { error: { code: string } }).error.code,
    'NONSTOP_ERR_MALFORMED_JSON',
  );

  const bodyOnGet = await fetch(`${url}/notes/123`, {
    method: 'DELETE',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  assert.equal(bodyOnGet.status, 400);

  const manyHeaders: Record<string, string> = {};
  for (let i = 0; i < 80; i++) manyHeaders[`x-h${i}`] = 'v';
  assert.equal((await fetch(`${url}/notes`, { headers: manyHeaders })).status, 431);

  const longUrl = await fetch(`${url}/notes?q=${'a'.repeat(9000)}`);
  assert.equal(longUrl.status, 414);

  const bigHeader = await fetch(`${url}/notes`, { headers: { 'x-big': 'a'.repeat(20_000) } });
  assert.equal(bigHeader.status, 431);

  const port = Number(new URL(url).port);
  assert.match(await rawRequest(port, 'HELLO THERE\r\n\r\n'), /^HTTP\/1\.1 400 Bad Request/);
  assert.match(
    await rawRequest(port, 'GET /notes HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'),
    /^HTTP\/1\.1 400/,
  );

  // Only the queue's own metadata, written when the gateway connected; no job, no counter.
  assert.deepEqual(
    await redis.keys(),
    [`${redis.prefix}:gw-gw1:meta`],
    'no refused request may touch the queue',
  );
});

test('a client past its rate gets 429 with Retry-After; another client is unaffected', async (t) => {
  const redis = testRedis(t);
  const { url } = await startTestGateway(t, {
    prefix: redis.prefix,
    overrides: { limits: { ratePerSecond: 0.1, rateBurst: 3 } },
  });
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await fetch(`${url}/unknown`)).status);
  assert.deepEqual(statuses, [404, 404, 404, 429, 429]);
  const limited = await fetch(`${url}/unknown`);
  assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  assert.equal((await fetch(`${url}/healthz`)).status, 200, 'health checks are not rate limited');
});

test('with Redis unreachable the gateway answers 503 at once, and readiness says so', async (t) => {
  const redis = testRedis(t);
  // Port 1 on loopback: nothing listens, connections are refused immediately.
  const { url } = await startTestGateway(t, { prefix: redis.prefix, redisPort: 1 });
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
  const ready = await fetch(`${url}/readyz`);
  assert.equal(ready.status, 503);
  const started = Date.now();
  const res = await fetch(`${url}/notes`);
  const elapsed = Date.now() - started;
  assert.equal(res.status, 503);
  assert.equal(res.headers.get('retry-after'), '5');
  // "At once" means without waiting for the reply deadline (3 s in this gateway).
  assert.ok(elapsed < 1500, `503 took ${elapsed} ms`);
});

test('a Redis that stops answering gets 503 within the command timeout, not the reply deadline', async (t) => {
  const own = await startOwnRedis(t);
  const { url } = await startTestGateway(t, {
    prefix: 'stall',
    redisPort: own.port,
    overrides: { replyTimeoutMs: 20000 },
  });
  await untilReady(url);
  own.process.kill('SIGSTOP');
  t.after(() => own.process.kill('SIGCONT'));
  const started = Date.now();
  const res = await fetch(`${url}/notes`);
  assert.equal(res.status, 503);
  assert.ok(Date.now() - started < 5000, `503 after ${Date.now() - started} ms`);
});

test('after a Redis restart the gateway queues again by itself', async (t) => {
  const own = await startOwnRedis(t);
  const { url } = await startTestGateway(t, { prefix: 'restart', redisPort: own.port });
  await untilReady(url);
  await own.kill();
  assert.equal((await fetch(`${url}/notes`)).status, 503);
  await own.restart();
  await untilReady(url, 10_000);
  // Queued (no broker here, so it waits for its deadline): 504, not 503, proves the add worked.
  const res = await fetch(`${url}/notes`);
  assert.equal(res.status, 504);
});

test('a slow-loris connection is cut at the header timeout; other clients are served meanwhile', async (t) => {
  const redis = testRedis(t);
  const { url } = await startTestGateway(t, {
    prefix: redis.prefix,
    overrides: { limits: { headersTimeoutMs: 1000, requestTimeoutMs: 2000 } },
  });
  const port = Number(new URL(url).port);
  const started = Date.now();
  const closed = new Promise<{ ms: number; answer: string }>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('GET /notes HTTP/1.1\r\nHost: x\r\n'));
    let answer = '';
    // One header line every 300 ms, never the blank line that ends them.
    const drip = setInterval(() => socket.writable && socket.write(`X-Drip-${Date.now()}: 1\r\n`), 300);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('close', () => {
      clearInterval(drip);
      resolve({ ms: Date.now() - started, answer });
    });
    socket.on('error', reject);
  });
  assert.equal((await fetch(`${url}/healthz`)).status, 200, 'served while the slow client dribbles');
  const { ms, answer } = await closed;
  assert.match(answer, /^HTTP\/1\.1 408/);
  assert.ok(ms < 4000, `the slow connection lived ${ms} ms`);
});

test('connections past the cap are refused; the gateway serves again when they close', async (t) => {
  const redis = testRedis(t);
  const { url } = await startTestGateway(t, {
    prefix: redis.prefix,
    overrides: { limits: { maxConnections: 5 } },
  });
  const port = Number(new URL(url).port);
  const held = await Promise.all(
    Array.from(
      { length: 5 },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.on('error', reject);
        }),
    ),
  );
  await new Promise((r) => setTimeout(r, 100));
  const refused = await fetch(`${url}/healthz`).then(
    () => false,
    () => true,
  );
  assert.ok(refused, 'a sixth connection is dropped');
  for (const s of held) s.destroy();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await fetch(`${url}/healthz`)).status, 200);
});
