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

test('each end is the median of `span` windows, and memory is judged less shared memory', () => {
  const withShmem = (t: number, pss: number, shmem: number, p99: number): SoakSample => ({
    ...sample(t, pss, pss, 10, p99),
    shmemKiB: { postgres: shmem },
  });
  const samples = [
    withShmem(10, 100, 0, 9),
    withShmem(20, 100, 10, 900), // one slow window at the end of the warm-up
    withShmem(30, 110, 20, 10),
    withShmem(40, 150, 60, 10),
    withShmem(50, 190, 100, 2000), // and one at the end
    withShmem(60, 190, 100, 11),
  ];
  const growth = growthOf(samples, 3, 3);
  // PSS 100 → 190 (+90 %), all of it shared memory: own 90 → 90.
  assert.equal(growth['pss:postgres'], 0.9);
  assert.equal(growth['shmem:postgres'], 9);
  assert.equal(growth['own:postgres'], 0);
  // Medians 10 → 11: the two slow windows do not decide.
  assert.equal(growth['p99'], 0.1);
  assert.equal(isFlat({ ...growth, p99: 0.05 }), true, 'PSS and shmem are reported, not judged');
  assert.equal(isFlat({ ...growth, p99: 0.05, 'own:postgres': 0.2 }), false);
});
