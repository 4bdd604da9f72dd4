// The knock guard's metrics config and registry (test/e2e/guard-metrics.test.ts scrapes a running
// guard with real raw sockets): loopback unless allowNonLoopback, and the series read the guard's
// counts when scraped.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseGuardConfig } from '../../config/knock.js';
import type { GuardStats } from '../../knock/guard.js';
import { GuardMetrics } from '../../knock/metrics.js';
import { ZERO_GUARD_STATS } from '../helpers/guard-stats.js';
import { sampleValue } from '../helpers/prometheus.js';

const guard = (metrics: unknown) =>
  parseGuardConfig('gw/guard.json', { kind: 'guard', gateway: 'gw1', metrics });

test('metrics: {} listens on 127.0.0.1:9466; none without the section', () => {
  assert.deepEqual(guard({}).metrics, { host: '127.0.0.1', port: 9466, allowNonLoopback: false });
  assert.equal(parseGuardConfig('g.json', { kind: 'guard', gateway: 'gw1' }).metrics, undefined);
});

test('a non-loopback metrics host is refused unless allowNonLoopback', () => {
  assert.throws(
    () => guard({ host: '192.0.2.7' }),
    (err: Error) =>
      err.message.includes('gw/guard.json') &&
      err.message.includes('metrics.host') &&
      err.message.includes('"metrics.allowNonLoopback": true'),
  );
  assert.throws(() => guard({ host: '::' }), /metrics\.host/);
  assert.equal(guard({ host: '::1' }).metrics?.host, '::1');
  assert.equal(guard({ host: '192.0.2.7', allowNonLoopback: true }).metrics?.host, '192.0.2.7');
  assert.throws(() => guard({ port: -1 }), /metrics/);
  assert.throws(() => guard({ path: '/x' }), /metrics/);
});

test('each scrape reads the guard counts as they are then', async () => {
  let stats: GuardStats = ZERO_GUARD_STATS;
  const metrics = new GuardMetrics(() => stats, { maxTrackedSources: 100 }, { processMetrics: false });
  let text = await metrics.registry.metrics();
  assert.equal(sampleValue(text, 'nonstop_guard_sequences_total', { outcome: 'expired' }), 0);
  stats = {
    ...stats,
    received: 9,
    tracked: 3,
    evicted: 2,
    expired: 4,
    skewed: 2,
    windows: 1,
    windowErrors: 5,
  };
  text = await metrics.registry.metrics();
  assert.equal(sampleValue(text, 'nonstop_guard_knocks_total'), 9);
  assert.equal(sampleValue(text, 'nonstop_guard_tracked_sources'), 3);
  assert.equal(sampleValue(text, 'nonstop_guard_tracker_evictions_total'), 2);
  assert.equal(sampleValue(text, 'nonstop_guard_sequences_total', { outcome: 'expired' }), 4);
  assert.equal(sampleValue(text, 'nonstop_guard_sequences_total', { outcome: 'skewed' }), 2);
  assert.equal(sampleValue(text, 'nonstop_guard_windows_opened_total'), 1);
  assert.equal(sampleValue(text, 'nonstop_guard_window_errors_total'), 5);
  assert.equal(sampleValue(text, 'nonstop_guard_tracked_sources_limit'), 100);
  assert.match(text, /^# TYPE nonstop_guard_knocks_total counter$/m);
});
