import assert from 'node:assert/strict';
import { test } from 'node:test';
import { growthOf, isFlat, type SoakSample } from '../../bench/soak.js';

const sample = (t: number, rss: number, pss: number, fds: number, p99: number): SoakSample => ({
  t,
  requests: 100,
  ok: 100,
  failures: {},
  p50: 1,
  p99,
  rssKiB: { postgres: rss },
  pssKiB: { postgres: pss },
  fds: { postgres: fds },
});

test('growth runs from the end of the warm-up to the last window, per series', () => {
  const samples = [sample(10, 50, 40, 10, 9), sample(20, 100, 80, 20, 10), sample(30, 147, 84, 20, 11)];
  assert.deepEqual(growthOf(samples, 2), {
    'rss:postgres': 0.47,
    'pss:postgres': 0.05,
    'fds:postgres': 0,
    p99: 0.1,
  });
  assert.deepEqual(growthOf(samples.slice(0, 1), 1), {}, 'one window has nothing to compare');
});

test('flat is judged on PSS, file descriptors and p99; RSS is reported, not judged', () => {
  assert.equal(isFlat({ 'rss:postgres': 0.47, 'pss:postgres': 0.05, 'fds:postgres': 0, p99: 0.09 }), true);
  assert.equal(isFlat({ 'rss:postgres': 0, 'pss:postgres': 0.11 }), false);
  assert.equal(isFlat({ 'fds:core': 0.5 }), false);
  assert.equal(isFlat({ p99: 0.1 }), false);
});
