// The broker's /metrics with real traffic: `nonstop broker` (a cell per gateway) between a real
// gateway and a real core. The cell's time at the core travels to the status listener with its
// snapshot; the core's own listener counts the same request; the core gone, the failure is
// counted by its code.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startCore } from '../../core/server.js';
import { silentLogger } from '../../lib/log.js';
import { brokerConfigDoc } from '../helpers/broker.js';
import { startCli, waitForLogLine } from '../helpers/cli.js';
import { testCoreConfig } from '../helpers/core.js';
import { tempDir, writeJson } from '../helpers/files.js';
import { startTestGateway, untilReady } from '../helpers/gateway.js';
import { usePki } from '../helpers/pki.js';
import { httpAsk, sampleValue } from '../helpers/prometheus.js';
import { testRedis } from '../helpers/redis.js';
import { until } from '../helpers/until.js';

const H = 'nonstop_broker_core_request_duration_seconds';

describe('broker metrics', () => {
  const pki = usePki({ brokers: ['b1'] });

  test('a request through gateway, broker cell and core shows in both daemons’ metrics', async (t) => {
    const redis = testRedis(t);
    const core = await startCore(testCoreConfig(pki(), {}, { metrics: { port: 0 } }), silentLogger());
    let coreOpen = true;
    t.after(() => (coreOpen ? core.close() : undefined));
    const file = writeJson(
      tempDir(t),
      'broker.json',
      brokerConfigDoc(pki(), {
        prefix: redis.prefix,
        corePort: core.address.port,
        gateways: ['gw1'],
        extra: { logLevel: 'info', status: { port: 0 } },
      }),
    );
    const child = startCli(['broker', '--config', file]);
    child.stdin.end();
    t.after(() => child.kill('SIGKILL'));
    const line = await waitForLogLine(child, (l) => l.msg === 'status endpoint listening');
    const statusPort = (line.address as { port: number }).port;
    const { url } = await startTestGateway(t, { prefix: redis.prefix, overrides: { replyTimeoutMs: 1500 } });
    await untilReady(url);

    const broker = async () => (await httpAsk(statusPort, '/metrics')).body;
    const corePort = core.metricsAddress!.port;
    // The cell's series (zeros) show once its first snapshot has reached the status listener.
    await until('the cell reports its work metrics', async () => {
      return sampleValue(await broker(), `${H}_count`, { gateway: 'gw1', result: 'answered' }) === 0;
    });
    const before = await broker();
    assert.ok((sampleValue(before, 'nonstop_broker_process_start_time_seconds') ?? 0) > 0);
    assert.equal(sampleValue(before, 'nonstop_broker_cell_up', { gateway: 'gw1' }), 1);

    const post = (body: unknown) =>
      fetch(`${url}/notes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    assert.equal((await post({ title: 'measured' })).status, 201);
    assert.equal((await post({ title: '', colour: 'red' })).status, 400);

    await until('the answered job counted', async () => {
      const text = await broker();
      return sampleValue(text, 'nonstop_broker_jobs_total', { gateway: 'gw1', outcome: 'answered' }) === 1;
    });
    const after = await broker();
    assert.equal(sampleValue(after, `${H}_count`, { gateway: 'gw1', result: 'answered' }), 1);
    const sum = sampleValue(after, `${H}_sum`, { gateway: 'gw1', result: 'answered' })!;
    assert.ok(sum > 0 && sum < 1.5, `time at the core ${sum} s`);
    assert.equal(sampleValue(after, 'nonstop_broker_jobs_total', { gateway: 'gw1', outcome: 'invalid' }), 1);
    // The invalid request never reached the core: its histogram has the one request only.
    const coreText = (await httpAsk(corePort, '/metrics')).body;
    assert.equal(
      sampleValue(coreText, 'nonstop_core_requests_total', { route: 'notes.create', status: '201' }),
      1,
    );
    assert.equal(
      sampleValue(coreText, 'nonstop_core_request_duration_seconds_count', { route: 'notes.create' }),
      1,
    );

    // The core gone: the broker retries until the deadline, then counts the failure by its code.
    await core.close();
    coreOpen = false;
    assert.equal((await post({ title: 'nowhere' })).status, 504);
    await until('the failure counted', async () => {
      const text = await broker();
      return (
        sampleValue(text, 'nonstop_broker_core_failures_total', {
          gateway: 'gw1',
          code: 'core_unavailable',
        }) === 1
      );
    });
    assert.equal(sampleValue(await broker(), `${H}_count`, { gateway: 'gw1', result: 'failed' }), 1);
  });
});
