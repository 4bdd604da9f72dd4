// The core's metrics listener: a request through the mTLS listener shows in its counter and
// histogram, database errors are counted, and the listener stays on loopback unless allowed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CoreMetrics } from '../../core/metrics.js';
import { startCore } from '../../core/server.js';
import { silentLogger } from '../../lib/log.js';
import { startMetricsListener } from '../../lib/metrics-listener.js';
import { testCoreConfig } from '../helpers/core.js';
import { makeEnvelope } from '../helpers/envelope.js';
import { notes } from '../helpers/execute.js';
import { httpsJson, type TlsClient } from '../helpers/https.js';
import { TEST_PG_URL, useTestSchema } from '../helpers/pg.js';
import { usePki } from '../helpers/pki.js';
import { httpAsk, sampleValue } from '../helpers/prometheus.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

describe('core metrics', () => {
  const pki = usePki({ brokers: ['b1'], gateways: ['gw1'] });
  const client = (): TlsClient => ({ ca: pki().pem(pki().ca).cert, ...pki().pem(pki().brokers.b1!) });
  const execute = (body: { id: string }) => ({
    method: 'POST',
    path: '/v1/execute',
    headers: { 'content-type': 'application/json', 'idempotency-key': body.id },
    body,
  });
  const scrape = async (port: number) => {
    const r = await httpAsk(port, '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.type ?? '', /^text\/plain/);
    return r.body;
  };

  test('an executed request increments its route and status, and the latency histogram', async (t) => {
    const config = testCoreConfig(pki(), {}, { metrics: { port: 0 } });
    assert.deepEqual(
      [config.metrics?.host, config.metrics?.allowNonLoopback],
      ['127.0.0.1', false],
      'the defaults: loopback, no admin network',
    );
    const core = await startCore(config, silentLogger());
    t.after(() => core.close());
    const port = core.metricsAddress!.port;
    assert.ok(port > 0);
    assert.equal(core.metricsAddress!.host, '127.0.0.1');

    const before = await scrape(port);
    const route = { route: 'notes.create' };
    assert.equal(sampleValue(before, 'nonstop_core_request_duration_seconds_count', route), 0);
    assert.equal(sampleValue(before, 'nonstop_core_requests_total', { ...route, status: '201' }), undefined);
    assert.ok((sampleValue(before, 'nonstop_core_process_start_time_seconds') ?? 0) > 0);
    assert.match(before, /^nonstop_core_nodejs_heap_size_used_bytes \d+/m);

    const envelope = makeEnvelope(notes.create({ title: 'counted' }));
    const answer = await httpsJson(core.address, client(), execute(envelope));
    assert.equal(answer.status, 200);
    // The same request again is a replay: counted too, under the same status.
    assert.equal((await httpsJson(core.address, client(), execute(envelope))).status, 200);
    assert.equal((await httpsJson(core.address, client(), { path: '/healthz' })).status, 200);
    assert.equal((await httpsJson(core.address, client(), { path: '/nowhere' })).status, 404);

    const after = await scrape(port);
    assert.equal(sampleValue(after, 'nonstop_core_requests_total', { ...route, status: '201' }), 2);
    assert.equal(sampleValue(after, 'nonstop_core_request_duration_seconds_count', route), 2);
    const sum = sampleValue(after, 'nonstop_core_request_duration_seconds_sum', route)!;
    assert.ok(sum > 0 && sum < 30, `latency sum ${sum} s`);
    assert.equal(
      sampleValue(after, 'nonstop_core_request_duration_seconds_bucket', { ...route, le: '30' }),
      2,
    );
    assert.equal(sampleValue(after, 'nonstop_core_requests_total', { route: '_health', status: '200' }), 1);
    assert.equal(sampleValue(after, 'nonstop_core_requests_total', { route: '_refused', status: '404' }), 1);
    assert.equal(sampleValue(after, 'nonstop_core_database_errors_total', { place: 'execute' }), 0);
  });

  test('a database that goes away is counted as database errors', async (t) => {
    const pg = new URL(TEST_PG_URL);
    const proxy = await startTcpProxy({ host: pg.hostname, port: Number(pg.port || 5432) });
    t.after(() => proxy.cut());
    const { schema } = await useTestSchema(t);
    pg.host = `127.0.0.1:${proxy.port}`;
    const config = testCoreConfig(pki(), { url: pg.href, schema, poolSize: 2 }, { metrics: { port: 0 } });
    const core = await startCore(config, silentLogger());
    t.after(() => core.close());
    await proxy.cut();
    const envelope = makeEnvelope(notes.create({ title: 'nowhere to go' }));
    assert.equal((await httpsJson(core.address, client(), execute(envelope))).status, 503);
    assert.equal((await httpsJson(core.address, client(), { path: '/healthz' })).status, 503);
    const text = await scrape(core.metricsAddress!.port);
    assert.equal(sampleValue(text, 'nonstop_core_database_errors_total', { place: 'execute' }), 1);
    assert.equal(sampleValue(text, 'nonstop_core_database_errors_total', { place: 'health' }), 1);
    assert.equal(
      sampleValue(text, 'nonstop_core_requests_total', { route: 'notes.create', status: '503' }),
      1,
    );
  });

  test('no metrics section, no listener', async (t) => {
    const core = await startCore(testCoreConfig(pki(), {}), silentLogger());
    t.after(() => core.close());
    assert.equal(core.metricsAddress, undefined);
  });

  test('a non-loopback host is refused by the config unless allowNonLoopback', () => {
    assert.throws(
      () => testCoreConfig(pki(), {}, { metrics: { host: '0.0.0.0', port: 9465 } }),
      (err: Error) =>
        /metrics\.host/.test(err.message) &&
        /loopback/.test(err.message) &&
        /allowNonLoopback/.test(err.message),
    );
    const admin = testCoreConfig(pki(), {}, { metrics: { host: '10.9.9.9', allowNonLoopback: true } });
    assert.equal(admin.metrics?.port, 9465, 'the default port');
    assert.throws(() => testCoreConfig(pki(), {}, { metrics: { port: 70000 } }), /metrics/);
  });

  test('the listener itself refuses a non-loopback bind, a foreign Host, other paths and methods', async (t) => {
    const metrics = new CoreMetrics(['notes.create'], { processMetrics: false });
    await assert.rejects(
      startMetricsListener(
        { host: '0.0.0.0', port: 0, allowNonLoopback: false },
        metrics.registry,
        silentLogger(),
      ),
      /loopback/,
    );
    const listener = await startMetricsListener(
      { host: '127.0.0.1', port: 0, allowNonLoopback: false },
      metrics.registry,
      silentLogger(),
    );
    t.after(() => listener.close());
    const port = listener.address.port;
    assert.equal((await httpAsk(port, '/metrics', 'GET', { host: 'attacker.example' })).status, 421);
    assert.equal((await httpAsk(port, '/metrics', 'POST')).status, 405);
    assert.equal((await httpAsk(port, '/status')).status, 404);
    metrics.count('notes.create', 201, 0.003);
    const text = (await httpAsk(port, '/metrics')).body;
    assert.equal(
      sampleValue(text, 'nonstop_core_requests_total', { route: 'notes.create', status: '201' }),
      1,
    );
    assert.equal(
      sampleValue(text, 'nonstop_core_request_duration_seconds_bucket', {
        route: 'notes.create',
        le: '0.005',
      }),
      1,
    );
    assert.equal(
      sampleValue(text, 'nonstop_core_request_duration_seconds_bucket', {
        route: 'notes.create',
        le: '0.0025',
      }),
      0,
    );
  });
});
