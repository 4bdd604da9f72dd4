// Every daemon's metrics in the three-tier world, from configs the deployment's builders render
// (config/render/): a request from the internet shows at the broker (its time at the core) and at
// the core (its route), the brokers' knocks at each gateway's guard; every listener is on its
// host's loopback, and the core's is not reachable from the private network.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ThreeTier } from '../../world/three-tier.js';
import type { Host } from '../../world/world.js';
import { worldSkipReason } from '../../world/world.js';
import { parseSamples, sampleValue } from '../helpers/prometheus.js';

const skip = worldSkipReason();

/** GET http://<at>:<port>/metrics from `host`, the body; throws on anything but 200. */
async function scrape(host: Host, port: number, at = '127.0.0.1'): Promise<string> {
  const r = await host.exec('curl', [
    '-sS',
    '-m',
    '5',
    '-w',
    '\\n%{http_code}',
    `http://${at}:${port}/metrics`,
  ]);
  const status = r.stdout.slice(r.stdout.lastIndexOf('\n') + 1);
  assert.equal(status, '200', `${at}:${port}: ${r.stderr}`);
  return r.stdout.slice(0, r.stdout.lastIndexOf('\n'));
}

const total = (text: string, name: string, labels: Record<string, string> = {}) =>
  parseSamples(text)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);

describe('metrics in the world', { skip }, () => {
  let tt: ThreeTier;
  before(async () => {
    tt = await ThreeTier.start({ gateways: 1, brokers: 1 });
    await tt.waitUntilServing(90_000);
  });
  after(() => tt?.close());

  test('a request shows at the broker and at the core', async () => {
    const broker = tt.broker('b1');
    const coreHost = tt.core.host;
    const before = {
      broker: await scrape(broker.host, broker.statusPort),
      core: await scrape(coreHost, 9465),
    };
    const answer = await tt.request('gw1', { path: '/notes?limit=1', timeoutMs: 5000 });
    assert.equal(answer.status, 200);
    const brokerText = await scrape(broker.host, broker.statusPort);
    const coreText = await scrape(coreHost, 9465);

    const h = 'nonstop_broker_core_request_duration_seconds_count';
    const labels = { gateway: 'gw1', result: 'answered' };
    assert.equal(total(brokerText, h, labels) - total(before.broker, h, labels), 1);
    assert.equal(sampleValue(brokerText, 'nonstop_broker_tunnel_state', { gateway: 'gw1', state: 'up' }), 1);
    assert.ok((sampleValue(brokerText, 'nonstop_broker_process_start_time_seconds') ?? 0) > 0);

    const route = { route: 'notes.list', status: '200' };
    assert.equal(
      total(coreText, 'nonstop_core_requests_total', route) -
        total(before.core, 'nonstop_core_requests_total', route),
      1,
    );
    const c = 'nonstop_core_request_duration_seconds_count';
    assert.equal(
      total(coreText, c, { route: 'notes.list' }) - total(before.core, c, { route: 'notes.list' }),
      1,
    );
    assert.equal(total(coreText, 'nonstop_core_database_errors_total'), 0);
  });

  test("the broker's knock shows at the gateway's guard", async () => {
    const text = await scrape(tt.gateway('gw1').host, 9466);
    assert.ok(total(text, 'nonstop_guard_sequences_total', { outcome: 'opened' }) >= 1, 'a sequence opened');
    assert.ok(total(text, 'nonstop_guard_windows_opened_total') >= 1, 'a window opened');
    assert.ok(total(text, 'nonstop_guard_knocks_total') >= 2, 'its knocks were read');
    assert.equal(total(text, 'nonstop_guard_window_errors_total'), 0);
    assert.ok((sampleValue(text, 'nonstop_guard_process_start_time_seconds') ?? 0) > 0);
  });

  test("the core's listener is on its loopback only", async () => {
    const r = await tt
      .broker('b1')
      .host.exec('curl', ['-sS', '-m', '3', `http://${tt.core.ip}:9465/metrics`]);
    assert.notEqual(r.code, 0, 'the private network cannot read the core metrics');
  });
});
