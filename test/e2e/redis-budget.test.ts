// Each gateway's Redis in the world runs in a cgroup of its own with the budget `nonstop
// redis-acl` rendered into its unit drop-in (read back from the cgroup files), gets a fresh one
// when it starts again, and leaves none behind: not when it is killed, not after close.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import type { BudgetCgroup } from '../../world/cgroup.js';
import { peerNice, quotaUs, weightToShares, weightToV2 } from '../../world/cgroup.js';
import { ThreeTier, type RedisNode } from '../../world/three-tier.js';
import { worldSkipReason } from '../../world/world.js';

const skip = worldSkipReason();
const MB = 1024 * 1024;

const read = (dir: string, file: string) => readFileSync(join(dir, file), 'utf8').trim();

/** The budget as the unit drop-in next to its redis.conf says it. */
function renderedBudget(r: RedisNode): { weight: number; quota: number | null; memoryMax: number } {
  const unit = readFileSync(join(dirname(r.configFile), 'unit.conf'), 'utf8');
  const weight = Number(/^CPUWeight=(\d+)$/m.exec(unit)?.[1]);
  const quota = /^CPUQuota=(\d*)%?$/m.exec(unit)?.[1];
  const memoryMax = Number(/^MemoryMax=(\d+)M$/m.exec(unit)?.[1]) * MB;
  assert.ok(Number.isInteger(weight) && Number.isInteger(memoryMax), unit);
  return { weight, quota: quota === undefined || quota === '' ? null : Number(quota), memoryMax };
}

function assertInGroup(r: RedisNode, cg: BudgetCgroup): void {
  const pid = r.process.child.pid!;
  const b = renderedBudget(r);
  assert.deepEqual(r.budget, { cpuWeight: b.weight, cpuQuotaPercent: b.quota, memoryMaxBytes: b.memoryMax });
  const nice = peerNice();
  if (cg.version === 1) {
    assert.equal(read(cg.cpuDir, 'cpu.shares'), String(weightToShares(b.weight, nice)));
    const period = Number(read(cg.cpuDir, 'cpu.cfs_period_us'));
    assert.equal(
      read(cg.cpuDir, 'cpu.cfs_quota_us'),
      b.quota === null ? '-1' : String(quotaUs(b.quota, period)),
    );
    if (cg.memoryDir !== undefined) {
      assert.equal(read(cg.memoryDir, 'memory.limit_in_bytes'), String(b.memoryMax));
      assert.ok(read(cg.memoryDir, 'cgroup.procs').split('\n').includes(String(pid)));
    }
  } else {
    const weight =
      cg.peerWeight === null ? weightToV2(b.weight, nice) : Math.round((b.weight * cg.peerWeight) / 100);
    assert.equal(read(cg.cpuDir, 'cpu.weight'), String(weight));
    assert.equal(read(cg.cpuDir, 'cpu.max'), `${b.quota === null ? 'max' : quotaUs(b.quota)} 100000`);
    if (cg.memoryDir !== undefined) assert.equal(read(cg.memoryDir, 'memory.max'), String(b.memoryMax));
  }
  // The Redis itself (and every thread of it: its background threads started inside).
  assert.ok(cg.pids().includes(pid), `${pid} in ${cg.cpuDir}: ${cg.pids().join(' ')}`);
  const threads = readFileSync(join(cg.cpuDir, 'tasks'), 'utf8').trim().split('\n');
  assert.ok(threads.length > 1, `redis-server's threads in ${cg.cpuDir}: ${threads.join(' ')}`);
}

describe("a gateway Redis's CPU and memory budget in the world", { skip }, () => {
  test('each Redis sits in its own cgroup with the rendered budget, and none is left', async (t) => {
    const tt = await ThreeTier.start({ gateways: 2, brokers: 1 });
    const dirs: string[] = [];
    try {
      const support = tt.world.cgroupSupport();
      if (support.version === 0) {
        for (const r of Object.values(tt.broker('b1').redis)) assert.equal(r.cgroup, null);
        t.skip(`no writable cgroup controller here: ${support.reason}`);
        return;
      }
      const redis = Object.values(tt.broker('b1').redis);
      assert.equal(redis.length, 2);
      const groups = new Set<string>();
      for (const r of redis) {
        assert.ok(r.cgroup !== null, `${r.gatewayId}: budget not applied`);
        assertInGroup(r, r.cgroup);
        groups.add(r.cgroup.cpuDir);
        dirs.push(r.cgroup.cpuDir, ...(r.cgroup.memoryDir === undefined ? [] : [r.cgroup.memoryDir]));
      }
      assert.equal(groups.size, 2, 'one group per Redis');
      assert.ok(
        [...groups].every((g) => g.includes(tt.world.prefix)),
        'named after this world',
      );

      // Killed: its group goes with it. Started again: a fresh group, the same budget.
      const gw1 = tt.redis('b1', 'gw1');
      const old = gw1.cgroup!;
      await tt.killRedis('b1', 'gw1');
      for (let i = 0; i < 100 && existsSync(old.cpuDir); i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(existsSync(old.cpuDir), false, `${old.cpuDir} is still there after its Redis died`);
      await tt.startRedis('b1', 'gw1');
      assert.ok(gw1.cgroup !== null && gw1.cgroup.cpuDir !== old.cpuDir);
      assertInGroup(gw1, gw1.cgroup);
      dirs.push(gw1.cgroup.cpuDir, ...(gw1.cgroup.memoryDir === undefined ? [] : [gw1.cgroup.memoryDir]));
      await tt.restartRedis('b1', 'gw2');
      assertInGroup(tt.redis('b1', 'gw2'), tt.redis('b1', 'gw2').cgroup!);
      dirs.push(tt.redis('b1', 'gw2').cgroup!.cpuDir);
      // Still serving, through the restarted Redis servers.
      await tt.waitUntilServing(60_000);
    } finally {
      await tt.close();
    }
    for (const d of dirs) assert.equal(existsSync(d), false, `${d} left after close`);
  });
});
