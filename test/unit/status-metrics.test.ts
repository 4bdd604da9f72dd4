// The broker's /metrics (broker/metrics.ts) and /status documents: each tunnel's state and budget
// counts, each queue's depth, and the work metrics of every process that works queues, summed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BrokerStatusMetrics, BrokerWorkMetrics } from '../../broker/metrics.js';
import { statusDocument, type StatusSnapshot } from '../../broker/status-server.js';
import type { TunnelStatus } from '../../broker/tunnel.js';
import { sampleValue } from '../helpers/prometheus.js';

const tunnel: TunnelStatus = {
  gatewayId: 'gw1',
  gateway: '198.18.0.11:22',
  remotePort: 7001,
  state: 'up',
  since: new Date(0).toISOString(),
  lastError: null,
  reconnects: 2,
  forwarded: 5,
  channels: 1,
  refused: 300,
  throttled: 17,
  pausedMs: 4250,
  paused: true,
};
const snapshot: StatusSnapshot = {
  tunnels: [tunnel],
  jobs: { gw1: { answered: 7, invalid: 1, tampered: 0, expired: 2 } },
  queues: { gw1: { waiting: 12, active: 3, delayed: 0 } },
  cells: [],
};
const text = (s: StatusSnapshot) => new BrokerStatusMetrics({ processMetrics: false }).text(s);

test('metrics count the pauses over budget and the time paused, per gateway', async () => {
  const t = await text(snapshot);
  assert.match(t, /^# TYPE nonstop_broker_tunnel_throttled_total counter$/m);
  assert.match(t, /^nonstop_broker_tunnel_throttled_total\{gateway="gw1"\} 17$/m);
  assert.match(t, /^nonstop_broker_tunnel_paused_seconds_total\{gateway="gw1"\} 4\.25$/m);
  assert.match(t, /^nonstop_broker_tunnel_reconnects_total\{gateway="gw1"\} 2$/m);
});

test('the tunnel state per gateway is 1 for the current state only; jobs by outcome', async () => {
  const t = await text(snapshot);
  assert.equal(sampleValue(t, 'nonstop_broker_tunnel_state', { gateway: 'gw1', state: 'up' }), 1);
  assert.equal(sampleValue(t, 'nonstop_broker_tunnel_state', { gateway: 'gw1', state: 'backing-off' }), 0);
  const down = await text({ ...snapshot, tunnels: [{ ...tunnel, state: 'backing-off' }] });
  assert.equal(sampleValue(down, 'nonstop_broker_tunnel_state', { gateway: 'gw1', state: 'up' }), 0);
  assert.equal(sampleValue(down, 'nonstop_broker_tunnel_state', { gateway: 'gw1', state: 'backing-off' }), 1);
  assert.equal(sampleValue(t, 'nonstop_broker_jobs_total', { gateway: 'gw1', outcome: 'answered' }), 7);
  assert.equal(sampleValue(t, 'nonstop_broker_jobs_total', { gateway: 'gw1', outcome: 'expired' }), 2);
});

test('one registry serves successive snapshots: a gateway gone is gone from the text', async () => {
  const metrics = new BrokerStatusMetrics({ processMetrics: false });
  assert.match(await metrics.text(snapshot), /gateway="gw1"/);
  const empty = await metrics.text({ tunnels: [], jobs: {}, queues: {}, cells: [] });
  assert.doesNotMatch(empty, /gateway="gw1"/);
  assert.match(empty, /^# TYPE nonstop_broker_jobs_total counter$/m);
});

test('the status document has them as the tunnel reports them', () => {
  const doc = statusDocument('b1', snapshot) as { tunnels: TunnelStatus[] };
  assert.equal(doc.tunnels[0]!.throttled, 17);
  assert.equal(doc.tunnels[0]!.pausedMs, 4250);
  assert.equal(doc.tunnels[0]!.paused, true);
});

test("each gateway's queue depth is a gauge by state, and in the status document", async () => {
  const t = await text(snapshot);
  assert.match(t, /^# TYPE nonstop_broker_queue_jobs gauge$/m);
  assert.match(t, /^nonstop_broker_queue_jobs\{gateway="gw1",state="waiting"\} 12$/m);
  assert.match(t, /^nonstop_broker_queue_jobs\{gateway="gw1",state="active"\} 3$/m);
  const doc = statusDocument('b1', snapshot) as { queues: StatusSnapshot['queues'] };
  assert.deepEqual(doc.queues, { gw1: { waiting: 12, active: 3, delayed: 0 } });
});

test("each cell's core latency histogram and failures reach /metrics, summed, never /status", async () => {
  // Two cells, as their snapshots carry them (JSON through the IPC channel).
  const cell1 = new BrokerWorkMetrics(['gw1']);
  const cell2 = new BrokerWorkMetrics(['gw2']);
  cell1.forGateway('gw1').observe(0.02);
  cell1.forGateway('gw1').observe(0.3);
  cell2.forGateway('gw2').observe(4, 'NONSTOP_ERR_CORE_UNAVAILABLE');
  const work = [
    JSON.parse(JSON.stringify(await cell1.json())),
    JSON.parse(JSON.stringify(await cell2.json())),
  ];
  const t = await text({ ...snapshot, work });
  const h = 'nonstop_broker_core_request_duration_seconds';
  assert.match(t, new RegExp(`^# TYPE ${h} histogram$`, 'm'));
  assert.equal(sampleValue(t, `${h}_count`, { gateway: 'gw1', result: 'answered' }), 2);
  assert.equal(sampleValue(t, `${h}_bucket`, { gateway: 'gw1', result: 'answered', le: '0.025' }), 1);
  assert.equal(sampleValue(t, `${h}_bucket`, { gateway: 'gw1', result: 'answered', le: '+Inf' }), 2);
  assert.ok(Math.abs(sampleValue(t, `${h}_sum`, { gateway: 'gw1', result: 'answered' })! - 0.32) < 1e-9);
  assert.equal(sampleValue(t, `${h}_count`, { gateway: 'gw1', result: 'failed' }), 0);
  assert.equal(sampleValue(t, `${h}_count`, { gateway: 'gw2', result: 'failed' }), 1);
  assert.equal(sampleValue(t, `${h}_bucket`, { gateway: 'gw2', result: 'failed', le: '2.5' }), 0);
  assert.equal(
    sampleValue(t, 'nonstop_broker_core_failures_total', { gateway: 'gw2', code: 'core_unavailable' }),
    1,
  );
  assert.equal(JSON.stringify(statusDocument('b1', { ...snapshot, work })).includes('core_request'), false);
});

test('the process metrics are the status process own, under the broker prefix', async () => {
  const t = await new BrokerStatusMetrics().text(snapshot);
  assert.ok((sampleValue(t, 'nonstop_broker_process_start_time_seconds') ?? 0) > 0);
  assert.match(t, /^nonstop_broker_nodejs_heap_size_used_bytes \d+/m);
});
