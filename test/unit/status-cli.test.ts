// `nonstop status`'s table: a row per gateway, health from tunnels and cells, and the errors
// behind what is down.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatStatus, isHealthy, type BrokerStatusDocument } from '../../cli/status.js';

const now = Date.parse('2026-12-02T12:00:00Z');
const doc: BrokerStatusDocument = {
  brokerId: 'b1',
  tunnels: [
    {
      gatewayId: 'gw1',
      gateway: '198.18.0.11:22',
      remotePort: 7001,
      state: 'up',
      since: '2026-12-02T11:55:00Z',
      lastError: null,
      reconnects: 0,
      forwarded: 4,
      channels: 2,
      refused: 0,
      throttled: 0,
      pausedMs: 0,
      paused: false,
    },
    {
      gatewayId: 'gw2',
      gateway: '198.18.0.12:22',
      remotePort: 7001,
      state: 'backing-off',
      since: '2026-12-02T11:59:30Z',
      lastError: 'connect ETIMEDOUT 198.18.0.12:22',
      reconnects: 3,
      forwarded: 0,
      channels: 0,
      refused: 0,
      throttled: 0,
      pausedMs: 0,
      paused: false,
    },
  ],
  jobs: { gw1: { answered: 120, invalid: 2, tampered: 0, expired: 1 } },
  queues: { gw1: { waiting: 5, active: 2, delayed: 0 } },
  cells: [
    { gatewayId: 'gw1', pid: 10, state: 'running', since: '', restarts: 0, lastExit: null },
    { gatewayId: 'gw2', pid: null, state: 'restarting', since: '', restarts: 2, lastExit: 'SIGKILL' },
  ],
};

test('a row per gateway, with its cell, tunnel, queue and job counts', () => {
  const lines = formatStatus(doc, 'http://127.0.0.1:9100', now).split('\n');
  assert.equal(lines[0], 'broker b1 (http://127.0.0.1:9100): NOT all up');
  assert.match(lines[2]!, /^ {2}gw1 +running +up +5m +5 +2 +0 +120 +2 +0 +1$/);
  assert.match(lines[3]!, /^ {2}gw2 +restarting \(2 restarts\) +backing-off +30s +\? +\? +\? +0 +0 +0 +0$/);
  assert.deepEqual(lines.slice(4), [
    'errors:',
    '  gw2: tunnel backing-off: connect ETIMEDOUT 198.18.0.12:22',
    '  gw2: cell restarting, last exit SIGKILL',
  ]);
});

test('healthy only when every tunnel is up and every cell running', () => {
  assert.equal(isHealthy(doc), false);
  const up = { ...doc, tunnels: [doc.tunnels[0]!], cells: [doc.cells[0]!] };
  assert.equal(isHealthy(up), true);
  assert.match(formatStatus(up, 'u', now), /^broker b1 \(u\): all up$/m);
});
