// The broker's /metrics and /status documents carry each tunnel's budget counts and each queue's depth.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { metricsText, statusDocument, type StatusSnapshot } from '../../broker/status-server.js';
import type { TunnelStatus } from '../../broker/tunnel.js';

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
  jobs: {},
  queues: { gw1: { waiting: 12, active: 3, delayed: 0 } },
  cells: [],
};

test('metrics count the pauses over budget and the time paused, per gateway', () => {
  const text = metricsText(snapshot);
  assert.match(text, /^# TYPE nonstop_tunnel_throttled_total counter$/m);
  assert.match(text, /^nonstop_tunnel_throttled_total\{gateway="gw1"\} 17$/m);
  assert.match(text, /^nonstop_tunnel_paused_seconds_total\{gateway="gw1"\} 4\.250$/m);
});

test('the status document has them as the tunnel reports them', () => {
  const doc = statusDocument('b1', snapshot) as { tunnels: TunnelStatus[] };
  assert.equal(doc.tunnels[0]!.throttled, 17);
  assert.equal(doc.tunnels[0]!.pausedMs, 4250);
  assert.equal(doc.tunnels[0]!.paused, true);
});

test("each gateway's queue depth is a gauge by state, and in the status document", () => {
  const text = metricsText(snapshot);
  assert.match(text, /^# TYPE nonstop_queue_jobs gauge$/m);
  assert.match(text, /^nonstop_queue_jobs\{gateway="gw1",state="waiting"\} 12$/m);
  assert.match(text, /^nonstop_queue_jobs\{gateway="gw1",state="active"\} 3$/m);
  const doc = statusDocument('b1', snapshot) as { queues: StatusSnapshot['queues'] };
  assert.deepEqual(doc.queues, { gw1: { waiting: 12, active: 3, delayed: 0 } });
});
