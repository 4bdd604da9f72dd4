// The gateway's metrics listener against a real gateway: requests by route label and status, a
// refusal, the replies awaited, a failed queue add, and the served certificate's expiry across a
// reload. A BullMQ worker in the test stands in for the broker: it answers each job on its
// gateway's reply stream, when the test lets it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { generatePki } from '../../lib/pki.js';
import { queueName, replyKey, type Envelope } from '../../lib/envelope.js';
import { tempDir } from '../helpers/files.js';
import { startTestGateway, untilReady } from '../helpers/gateway.js';
import { usePki } from '../helpers/pki.js';
import { httpAsk, sampleValue } from '../helpers/prometheus.js';
import { REDIS_HOST, REDIS_PORT, testRedis } from '../helpers/redis.js';
import { startOwnRedis } from '../helpers/redis-server.js';
import { until } from '../helpers/until.js';
import { addReply } from '../helpers/replies.js';

const REQUESTS = 'nonstop_gateway_requests_total';
const LATENCY = 'nonstop_gateway_request_duration_seconds';

/** notAfter as openssl prints it, in unix seconds. */
function notAfter(certFile: string): number {
  const out = execFileSync('openssl', ['x509', '-noout', '-enddate', '-in', certFile], { encoding: 'utf8' });
  return Date.parse(out.trim().replace(/^notAfter=/, '')) / 1000;
}

/** Answers every job of gw1's queue with 200, each once `hold` (if set) resolves. */
function fakeBroker(t: TestContext, prefix: string, port = REDIS_PORT) {
  const replies = new Redis({ host: REDIS_HOST, port });
  const gates: { hold?: Promise<void> } = {};
  const seen: string[] = [];
  const worker = new Worker(
    queueName('gw1'),
    async (job) => {
      const envelope = job.data as Envelope;
      seen.push(envelope.route);
      await gates.hold;
      const reply = { id: envelope.id, status: 200, headers: {}, body: { ok: true } };
      await addReply(replies, replyKey(prefix, 'gw1', envelope.replyTo), reply);
    },
    { connection: { host: REDIS_HOST, port }, prefix },
  );
  t.after(async () => {
    await worker.close();
    replies.disconnect();
  });
  return { gates, seen };
}

describe('gateway metrics', () => {
  const pki = usePki();

  test('requests, refusals, pending replies and the certificate, on a loopback listener', async (t) => {
    const redis = testRedis(t);
    const dir = tempDir(t);
    const cert = join(dir, 'gw.crt');
    const key = join(dir, 'gw.key');
    copyFileSync(pki().gateways.gw1!.cert, cert);
    copyFileSync(pki().gateways.gw1!.key, key);
    const broker = fakeBroker(t, redis.prefix);
    const { gateway, url } = await startTestGateway(t, {
      prefix: redis.prefix,
      overrides: {
        https: { host: '127.0.0.1', port: 0, cert, key },
        metrics: { port: 0 },
        // Three requests from this address, then 429 (the bucket refills once in 1000 s).
        limits: { ratePerSecond: 0.001, rateBurst: 3 },
      },
    });
    await untilReady(url);
    const where = gateway.metricsAddress;
    assert.ok(where !== undefined);
    assert.equal(where.address, '127.0.0.1', 'on loopback unless configured otherwise');
    const scrape = async () => {
      const answer = await httpAsk(where.port, '/metrics');
      assert.equal(answer.status, 200);
      assert.match(answer.type ?? '', /^text\/plain; version=0\.0\.4/);
      return answer.body;
    };

    assert.equal((await fetch(`${url}/notes`)).status, 200);
    // The metrics path on a public listener is just a path no route has.
    const publicMetrics = await fetch(`${url}/metrics`);
    assert.equal(publicMetrics.status, 404);
    assert.doesNotMatch(await publicMetrics.text(), /nonstop_gateway_/);

    // A request held by the broker is a pending reply until it is answered.
    let release = () => {};
    broker.gates.hold = new Promise<void>((r) => (release = r));
    const held = fetch(`${url}/notes/1b4e28ba-2fa1-41d2-883f-0016d3cca427`);
    await until('the held request to reach the broker', () => broker.seen.length === 2, 5000);
    assert.equal(sampleValue(await scrape(), 'nonstop_gateway_pending_replies'), 1);
    await new Promise((r) => setTimeout(r, 150));
    release();
    assert.equal((await held).status, 200);
    assert.equal(sampleValue(await scrape(), 'nonstop_gateway_pending_replies'), 0);

    const limited = await fetch(`${url}/notes`);
    assert.equal(limited.status, 429);

    const text = await scrape();
    assert.equal(sampleValue(text, REQUESTS, { route: 'notes.list', status: '200' }), 1);
    assert.equal(sampleValue(text, REQUESTS, { route: 'notes.get', status: '200' }), 1);
    assert.equal(sampleValue(text, REQUESTS, { route: '_unmatched', status: '404' }), 1);
    assert.equal(sampleValue(text, REQUESTS, { route: '_refused', status: '429' }), 1);
    assert.ok((sampleValue(text, REQUESTS, { route: '_health', status: '200' }) ?? 0) >= 1);
    assert.equal(sampleValue(text, 'nonstop_gateway_refusals_total', { code: 'rate_limited' }), 1);
    assert.equal(sampleValue(text, 'nonstop_gateway_refusals_total', { code: 'not_found' }), 1);
    // The held request's latency: at least the time it was held, in no bucket below it.
    assert.equal(sampleValue(text, `${LATENCY}_count`, { route: 'notes.get' }), 1);
    assert.ok((sampleValue(text, `${LATENCY}_sum`, { route: 'notes.get' }) ?? 0) >= 0.15);
    assert.equal(sampleValue(text, `${LATENCY}_bucket`, { route: 'notes.get', le: '0.1' }), 0);
    assert.equal(sampleValue(text, `${LATENCY}_bucket`, { route: 'notes.get', le: '+Inf' }), 1);
    // Bounded labels: no raw path anywhere; the process's own metrics carry the prefix too.
    assert.doesNotMatch(text, /\{[^}]*="\/[^}]*\}/);
    assert.ok(sampleValue(text, 'nonstop_gateway_process_start_time_seconds') !== undefined);

    // The certificate served: its notAfter, and the new one's after a reload.
    const first = notAfter(cert);
    assert.equal(sampleValue(text, 'nonstop_gateway_certificate_expiry_seconds'), first);
    const next = await generatePki({ dir: join(dir, 'next'), gateways: ['gw1'], brokers: ['b1'], days: 30 });
    copyFileSync(next.gateways.gw1!.cert, cert);
    copyFileSync(next.gateways.gw1!.key, key);
    gateway.reloadTls();
    const second = notAfter(cert);
    assert.notEqual(second, first);
    assert.equal(sampleValue(await scrape(), 'nonstop_gateway_certificate_expiry_seconds'), second);

    // GET /metrics only, to a client that names this listener.
    assert.equal((await httpAsk(where.port, '/metrics', 'GET', { host: 'evil.example' })).status, 421);
    assert.equal((await httpAsk(where.port, '/metrics', 'POST')).status, 405);
    assert.equal((await httpAsk(where.port, '/status')).status, 404);
    assert.equal((await httpAsk(where.port, '/')).status, 404);
  });

  test('a queue add Redis refuses (out of memory) is counted by reason', async (t) => {
    const own = await startOwnRedis(t);
    const prefix = `m${process.pid}`;
    const { gateway, url } = await startTestGateway(t, {
      prefix,
      redisPort: own.port,
      overrides: { metrics: { port: 0 } },
    });
    await untilReady(url);
    const admin = new Redis({ host: '127.0.0.1', port: own.port });
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    admin.disconnect();
    const answer = await fetch(`${url}/notes`);
    assert.equal(answer.status, 503);
    const text = (await httpAsk(gateway.metricsAddress!.port, '/metrics')).body;
    assert.equal(sampleValue(text, 'nonstop_gateway_queue_add_failures_total', { reason: 'oom' }), 1);
    assert.equal(
      sampleValue(text, 'nonstop_gateway_queue_add_failures_total', { reason: 'not_connected' }),
      0,
    );
    assert.equal(sampleValue(text, 'nonstop_gateway_refusals_total', { code: 'queue_unavailable' }), 1);
    assert.equal(sampleValue(text, REQUESTS, { route: 'notes.list', status: '503' }), 1);
  });

  test('plain HTTP redirected to HTTPS counts as _redirect', async (t) => {
    const redis = testRedis(t);
    const { gateway, url } = await startTestGateway(t, {
      prefix: redis.prefix,
      overrides: {
        http: { host: '127.0.0.1', port: 0, mode: 'redirect' },
        https: { host: '127.0.0.1', port: 0, cert: pki().gateways.gw1!.cert, key: pki().gateways.gw1!.key },
        metrics: { port: 0 },
      },
    });
    assert.equal((await fetch(`${url}/notes`, { redirect: 'manual' })).status, 308);
    const text = (await httpAsk(gateway.metricsAddress!.port, '/metrics')).body;
    assert.equal(sampleValue(text, REQUESTS, { route: '_redirect', status: '308' }), 1);
    assert.equal(sampleValue(text, REQUESTS, { route: 'notes.list' }), undefined);
  });

  test('a metrics host other than loopback stops the gateway at start', async (t) => {
    await assert.rejects(
      startTestGateway(t, {
        prefix: `m${process.pid}`,
        overrides: { metrics: { host: '0.0.0.0', port: 0 } },
      }),
      /field "metrics\.host" must be a loopback address/,
    );
  });
});
