// How the world translates a unit's CPUWeight and CPUQuota into cgroup v1 and v2 values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { niceWeight, quotaUs, weightToShares, weightToV2 } from '../../world/cgroup.js';

test("systemd's translation at nice 0: weight 100 is 1024 shares, cpu.weight unchanged", () => {
  assert.equal(weightToShares(100), 1024);
  assert.equal(weightToShares(50), 512);
  assert.equal(weightToShares(1), 10);
  assert.equal(weightToV2(50), 50);
  assert.equal(weightToV2(100), 100);
});

test('scaled to the nice of the processes beside the group, so the ratio to them stays', () => {
  assert.equal(niceWeight(0), 1024);
  assert.equal(niceWeight(-10), 9548);
  assert.equal(niceWeight(19), 15);
  assert.equal(niceWeight(-30), 88761, 'clamped to -20');
  // Weight 50 beside a broker at nice -10 (weight 9548): half of it, as 50 is half of 100.
  assert.equal(weightToShares(50, -10), 4774);
  assert.equal(weightToV2(50, -10), 466);
  assert.equal(weightToV2(100, -20), 8668);
  assert.equal(weightToShares(1, 19), 2, "cgroup v1's least");
});

test('CPUQuota percent as microseconds of each period', () => {
  assert.equal(quotaUs(50), 50_000);
  assert.equal(quotaUs(150), 150_000);
  assert.equal(quotaUs(25, 200_000), 50_000);
  assert.equal(quotaUs(0.1), 1000, "the kernel's least quota is 1 ms");
});
