// Chaos: a steady stream of uniquely marked requests through the whole system while faults are
// injected one at a time, then mixed. Afterwards three ledgers are reconciled — what clients were
// told, what the core's database holds, what the queues still hold — and any request that was
// acknowledged without effect, took effect twice, or never got a definite answer fails the suite.
// The core runs on a real PostgreSQL server, as deployed (world/postgres.ts), which is one of
// the faults: killed with its backends mid-transaction, then recovered from its WAL; its data
// folder is a small disk of its own, filled to the last byte as another. Two core hosts share it,
// in every broker's core.peers: one is SIGKILLed mid-stream while the other serves on. The
// brokers are restarted with their wall clocks off (libfaketime, world/faketime.ts): 20 s either
// way is within the knocks' tolerance and must serve; 90 s ahead must open nothing, say so once
// and not storm. Then a broker's knock secret, every gateway's Redis password, the broker's SSH
// key and the broker/core certificates are rotated as README's "Rotating credentials" says
// (test/world/rotation.ts), each step a phase that must fail no request: not one attempt of a
// request first sent in one may be answered other than 201. Every tunnel, dropped, comes back on
// the new credentials alone, and after the stream the old ones open nothing.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, statfsSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { faketimeSkipReason, skewedClockEnv } from '../../world/faketime.js';
import { BLACKOUT, WanFault, type Impairment } from '../../world/netem.js';
import { ThreeTier } from '../../world/three-tier.js';
import { worldSkipReason, type HostProcess } from '../../world/world.js';
import type { ChaosResult } from '../world/chaos-client.js';
import {
  busiestBroker,
  guardLines,
  knockCounts,
  phaseOf,
  phaseTable,
  reconcile,
  waitForEmptyQueues,
  type Phase,
} from '../world/ledgers.js';
import { countNotes } from '../world/notes.js';
import { prepareRotation } from '../world/rotation.js';
import { probe } from './gateway.js';

const skip = worldSkipReason() ?? faketimeSkipReason();
const CHAOS_CLIENT = 'dist/test/world/chaos-client.js';
const RUN = randomBytes(4).toString('hex');
const GIVE_UP_MS = 60_000;
/** How long each fault lasts before it is healed. */
const OUTAGE_MS = 4000;
/** A long-haul link: 50 ms each way (100 ms round trip) ± 10 ms, 3% lost, 5% overtaking. */
const WAN: Impairment = { delayMs: 50, jitterMs: 10, loss: 0.03, reorder: 0.05 };
const BLACKOUT_MS = 20_000;
/** The database's disk (a tmpfs): room for the run's notes, small enough to fill in a moment. */
const DISK_MB = 192;
/** The broker whose credentials are rotated. */
const ROTATED = 'b1';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('chaos: nothing lost, nothing done twice', { skip }, () => {
  let tt: ThreeTier;
  let client: HostProcess;
  const phases: Phase[] = [];

  before(async () => {
    // The world stands in for machines of their own: the machine's other builds must not starve
    // its bring-up (every process it starts inherits this priority).
    setPriority(-10);
    // A short reply deadline, so a client whose reply was lost hears 504 soon and retries.
    tt = await ThreeTier.start({
      replyTimeoutMs: 3000,
      corePostgres: true,
      corePostgresDiskMb: DISK_MB,
      secondCore: true,
    });
  });
  after(() => tt?.close());

  /** What the cores answered the brokers' executions since `from` (line counts per core), but 200. */
  function coreFailures(from: readonly number[]): Record<string, number> {
    const failures: Record<string, number> = {};
    tt.cores.forEach((c, i) => {
      for (const line of c.process.lines.slice(from[i])) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { requestId?: string; status?: number; code?: string };
        if (entry.requestId === undefined || entry.status === undefined || entry.status === 200) continue;
        const key = `${entry.status} ${entry.code ?? ''}`;
        failures[key] = (failures[key] ?? 0) + 1;
      }
    });
    return failures;
  }
  const coreLines = () => tt.cores.map((c) => c.process.lines.length);
  /** The database unavailable: the cores said 503 (the brokers retry), never anything else. */
  function assertUnavailableMeanwhile(fault: string, failures: Record<string, number>): void {
    assert.ok(
      (failures['503 NONSTOP_ERR_DATABASE_UNAVAILABLE'] ?? 0) > 0,
      `${fault}: executions reached a core while its database could not take them`,
    );
    assert.deepEqual(
      Object.keys(failures).filter((k) => !k.startsWith('503 ') && !k.startsWith('504 ')),
      [],
      `${fault}: the cores answered 503 (or a deadline) meanwhile, nothing else`,
    );
    for (const c of tt.cores)
      assert.ok(
        c.process.running,
        `${fault}: a core died:\n${[...c.process.lines, ...c.process.stderrLines].slice(-10).join('\n')}`,
      );
  }

  async function phase(name: string, fault: () => void | Promise<void>): Promise<void> {
    const p: Phase = { name, start: Date.now(), end: 0 };
    phases.push(p);
    await fault();
    await tt.waitUntilServing(90_000);
    await sleep(1000); // some traffic on the healed system before the next fault
    p.end = Date.now();
  }

  test('faults one at a time, then mixed; the three ledgers agree', { timeout: 600_000 }, async (t) => {
    const [gw1, gw2] = tt.gateways;
    const rotation = await prepareRotation(tt, ROTATED);
    /** The phases that must fail no request (every attempt answered 201). */
    const strict = new Set<string>();
    client = tt.inet.node(CHAOS_CLIENT, [
      JSON.stringify({
        urls: tt.gateways.map((g) => g.httpUrl),
        run: RUN,
        concurrency: 8,
        attemptTimeoutMs: 8000,
        giveUpMs: GIVE_UP_MS,
      }),
    ]);
    await phase('steady (no fault)', () => sleep(3000));
    await phase('broker SIGKILL', async () => {
      // The broker carrying the traffic: the gateways queue on one Redis while it is up.
      const victim = await busiestBroker(tt);
      await tt.killBroker(victim);
      await sleep(OUTAGE_MS);
      tt.startBroker(victim);
    });
    await phase("gateway's sshd SIGKILL", async () => {
      await tt.killSshd(gw1!.id);
      await sleep(OUTAGE_MS);
      await tt.startSshd(gw1!.id);
    });
    await phase('partition (broker link down)', async () => {
      const victim = tt.broker(await busiestBroker(tt));
      await tt.setLink(victim.host, 'public', false);
      await sleep(OUTAGE_MS * 2);
      await tt.setLink(victim.host, 'public', true);
    });
    await phase('core restart', () => tt.restartCore());
    await phase('core host SIGKILL (the other serves on)', async () => {
      // One of the two core hosts dies with the executions it holds; the brokers send the
      // retries to the other, and the killed one, back, takes its share again.
      const [first, second] = tt.cores;
      const executed = () => second!.process.lines.filter((l) => l.includes('"route":"notes.create"')).length;
      const served = executed();
      first!.process.child.kill('SIGKILL');
      await first!.process.exited;
      await sleep(OUTAGE_MS);
      assert.ok(executed() > served, 'the other core executed notes.create meanwhile');
      await tt.restartCore(first);
    });
    await phase('PostgreSQL SIGKILL', async () => {
      // The postmaster and every backend at once, transactions and commits in flight: the cores
      // answer 503 meanwhile (nothing recorded, retried), and recovery keeps what was committed.
      const pg = tt.core.postgres!.primary;
      const pid = pg.process.pid;
      const from = coreLines();
      await pg.kill();
      await sleep(OUTAGE_MS);
      await pg.start();
      const failures = coreFailures(from);
      t.diagnostic(
        `PostgreSQL SIGKILL: postmaster ${pid}, restarted as ${pg.process.pid}; ` +
          `the cores' failed executions meanwhile: ${JSON.stringify(failures)}`,
      );
      assertUnavailableMeanwhile('PostgreSQL SIGKILL', failures);
    });
    await phase("the database's disk full", async () => {
      // Filled to the last byte (dd stops at ENOSPC), then freed: a write that needs a page
      // fails, the cores answer 503, nothing is half-written, and the retries land once.
      const dataDir = tt.core.postgres!.primary.dataDir;
      const filler = join(dataDir, 'chaos-filler');
      const from = coreLines();
      try {
        for (const bs of ['1M', '4k']) {
          try {
            execFileSync('dd', ['if=/dev/zero', `of=${filler}-${bs}`, `bs=${bs}`], { stdio: 'ignore' });
          } catch {
            // ENOSPC: what dd is for here
          }
        }
        const free = statfsSync(dataDir);
        assert.ok(free.bavail * free.bsize < 64 * 1024, `${free.bavail * free.bsize} bytes still free`);
        await sleep(OUTAGE_MS);
      } finally {
        for (const bs of ['1M', '4k']) rmSync(`${filler}-${bs}`, { force: true });
      }
      const failures = coreFailures(from);
      t.diagnostic(`disk full: the cores' failed executions meanwhile: ${JSON.stringify(failures)}`);
      assertUnavailableMeanwhile('disk full', failures);
    });
    // A clean restart of every Redis of the busiest broker: brokers keep nothing on disk, so the
    // queues are gone too; every request they held is answered 503/504 or reset, and retried.
    await phase('Redis restart', async () => tt.restartRedis(await busiestBroker(tt)));
    await phase('Redis SIGKILL', async () => {
      // Every Redis of the busiest broker (each gateway's), killed at once with what it held.
      const victim = await busiestBroker(tt);
      await Promise.all(tt.gateways.map((g) => tt.killRedis(victim, g.id)));
      t.diagnostic(`Redis SIGKILL: the Redis of ${tt.gateways.map((g) => g.id).join(', ')} on ${victim}`);
      await sleep(OUTAGE_MS);
      await Promise.all(tt.gateways.map((g) => tt.startRedis(victim, g.id)));
    });
    await phase('gateway restart', () => tt.restartGateway(gw2!.id));
    await phase('WAN: 100 ms RTT, jitter, 3% loss, reordering', async () => {
      // Every broker's and the client's link on the public segment. The gateway's sshd dies at
      // once, so every tunnel into it must knock and connect again across the WAN: a knock that
      // lost or reordered a step leaves SSH filtered, and the broker knocks again.
      const hosts = [...tt.brokers.map((b) => b.host), tt.inet];
      const fault = await WanFault.apply(tt.world, 'public', hosts, WAN);
      const from = guardLines(tt);
      let counts;
      try {
        await tt.killSshd(gw1!.id);
        await sleep(500);
        await tt.startSshd(gw1!.id);
        const t0 = Date.now();
        await tt.waitUntilServing(60_000);
        t.diagnostic(`WAN: every tunnel back, and serving, ${Date.now() - t0} ms after sshd returned`);
        await sleep(6000);
      } finally {
        counts = await fault.remove();
      }
      const knocks = knockCounts(tt, from);
      t.diagnostic(
        `WAN: forwarder ${JSON.stringify(counts)}; knocks at the guards: ${JSON.stringify(knocks)}`,
      );
      // Every broker's tunnel into gw1 came back, each after a knock that opened SSH.
      assert.ok(
        (knocks.opened ?? 0) >= tt.brokers.length,
        `a knock of each broker opened SSH across the WAN: ${JSON.stringify(knocks)}`,
      );
    });
    await phase(`WAN blackout ${BLACKOUT_MS / 1000} s`, async () => {
      // Nothing in or out of any broker on the public segment: every tunnel stalls and dies by
      // keepalive, knocks vanish; afterwards they knock, reconnect and carry the queue again.
      const fault = await WanFault.apply(
        tt.world,
        'public',
        tt.brokers.map((b) => b.host),
        BLACKOUT,
      );
      const from = guardLines(tt);
      let counts;
      try {
        await sleep(BLACKOUT_MS);
      } finally {
        counts = await fault.remove();
      }
      const t0 = Date.now();
      await tt.waitUntilServing(90_000);
      t.diagnostic(
        `WAN blackout: forwarder ${JSON.stringify(counts)}; serving again ${Date.now() - t0} ms after; ` +
          `knocks at the guards: ${JSON.stringify(knockCounts(tt, from))}`,
      );
    });
    /** Stops a broker (its in-flight jobs finished) and starts it with its clock `seconds` off. */
    const restartBrokerSkewed = async (id: string, seconds: number) => {
      await tt.broker(id).process.stop(15_000);
      tt.startBroker(id, seconds === 0 ? {} : skewedClockEnv(seconds));
    };
    // After the WAN phases: those count knocks that open SSH, and these restarts leave windows
    // open that the brokers' next connections would use instead.
    await phase('clock skew: brokers 20 s behind and 20 s ahead', async () => {
      // Within the rotating knocks' tolerance (30 s): the knocks open, and every job is judged in
      // the queue's clock (lib/queue-clock.ts), so none is refused as forged (stamped "in the
      // future") or as expired, as raw clocks made them; the core counts each budget from its own.
      const skews = [
        ['b1', -20],
        ['b2', 20],
      ] as const;
      for (const [id, seconds] of skews) {
        await restartBrokerSkewed(id, seconds);
        await tt.waitUntilServing(60_000);
        await sleep(3000);
      }
      // Both were started in this phase: all their lines are this phase's.
      const lines = tt.brokers.map((b) => b.process.lines);
      for (const [id, seconds] of skews) {
        const mine = lines[tt.brokers.findIndex((b) => b.id === id)]!;
        const offsets = mine
          .filter((l) => l.includes("the queue's clock"))
          .map((l) => (JSON.parse(l) as { offsetMs: number }).offsetMs);
        assert.ok(
          offsets.length >= tt.gateways.length,
          `${id} measured each queue's clock: ${offsets.join(',')}`,
        );
        for (const o of offsets)
          assert.ok(Math.abs(o + seconds * 1000) < 1000, `${id}, ${seconds} s off: offset ${o} ms`);
      }
      const refused = lines
        .flat()
        .filter((l) => /rejected a tampered job|job expired before it was taken/.test(l));
      assert.deepEqual(refused.slice(0, 3), [], 'no job refused as forged or expired');
      const executed = lines.flat().filter((l) => l.includes('"msg":"executed"')).length;
      t.diagnostic(`clock skew ±20 s: the skewed brokers executed ${executed} requests`);
      assert.ok(executed > 0, 'the skewed brokers carried the traffic');
    });
    await phase('clock skew: a broker 90 s ahead', async () => {
      // Past the tolerance its knocks open nothing: each of its cells says once that its clock
      // may be why, each guard says once to fix that host's clock, and it backs off, no storm;
      // the other broker serves meanwhile. Then both come back with their clocks right.
      const b1 = tt.broker('b1');
      // Its last knocks' windows closed first: within one, SSH still takes its connections.
      await b1.process.stop(15_000);
      for (const g of tt.gateways) {
        const end = Date.now() + 60_000;
        while ((await probe(b1.host, g.ip, g.sshPort)) !== 'filtered') {
          assert.ok(Date.now() < end, `SSH on ${g.id} filtered again for b1`);
          await sleep(1000);
        }
      }
      const guardFrom = guardLines(tt);
      tt.startBroker('b1', skewedClockEnv(90));
      const started = Date.now();
      for (const g of tt.gateways)
        await b1.process.waitForLine(
          (l) => l.includes('"event":"knock-unanswered"') && l.includes(`"gatewayId":"${g.id}"`),
          60_000,
        );
      const elapsed = Date.now() - started;
      const lines = b1.process.jsonLines();
      assert.ok(!lines.some((l) => l.msg === 'tunnel up'), 'no tunnel of the skewed broker came up');
      for (const g of tt.gateways) {
        const mine = lines.filter((l) => l.gatewayId === g.id);
        assert.equal(mine.filter((l) => l.event === 'knock-unanswered').length, 1, `one hint for ${g.id}`);
        const attempts = mine.filter((l) => l.msg === 'tunnel could not be set up; retrying').length;
        // Each attempt waits connectTimeoutMs (10 s) for a port that stays filtered.
        const most = 2 + Math.floor(elapsed / 10_000);
        assert.ok(attempts <= most, `${g.id}: ${attempts} attempts in ${elapsed} ms (at most ${most})`);
        const skewed = g.guard.lines
          .slice(guardFrom.get(g.id))
          .filter((l) => l.includes('"event":"knock-clock-skew"') && l.includes('"client":"b1"'));
        assert.equal(skewed.length, 1, `${g.id}'s guard said once that b1's clock is off`);
      }
      t.diagnostic(`clock skew 90 s: the hints came ${elapsed} ms after the start`);
      for (const id of ['b1', 'b2']) await restartBrokerSkewed(id, 0);
    });
    // Nothing that carries traffic restarts in a rotation step, so none may fail a request.
    for (const step of rotation.steps) {
      strict.add(step.name);
      await phase(step.name, () => step.run());
    }
    await phase('rotation: every tunnel dropped, back on the new credentials', async () => {
      t.diagnostic(await rotation.reconnectAll());
    });
    await phase('mixed', async () => {
      // Everything at once: no broker is reachable for a while, then all heal together.
      const victim = await busiestBroker(tt);
      const other = tt.brokers.find((b) => b.id !== victim)!;
      // The other broker's Redis, every gateway's, restarted (emptied) in the same moment.
      await Promise.all([tt.killBroker(victim), tt.killSshd(gw1!.id), tt.restartRedis(other.id)]);
      await tt.setLink(other.host, 'public', false);
      await sleep(OUTAGE_MS);
      await tt.setLink(other.host, 'public', true);
      await Promise.all([tt.restartCore(), tt.restartGateway(gw2!.id)]);
      tt.startBroker(victim);
      await tt.startSshd(gw1!.id);
    });

    // Stop the stream; every request under way ends with a definite answer or gives up.
    client.child.stdin?.end();
    const code = await Promise.race([client.exited, sleep(GIVE_UP_MS + 30_000).then(() => 'timeout')]);
    assert.equal(code, 0, `chaos client: ${code} ${client.stderrLines.join('\n')}`);
    const results = client.jsonLines() as unknown as ChaosResult[];

    // Ledger 3: the queues. Every job ends up answered and removed.
    const queued = await waitForEmptyQueues(tt, 30_000);

    // After 'mixed' connected everything anew: the rotated-out credentials open nothing.
    await rotation.assertOnlyNewAccepted();

    // Ledger 2: the cores' database (they stop first, so nothing changes while it is read).
    await Promise.all(tt.cores.map((c) => c.process.stop(10_000)));
    const effects = await countNotes(tt.core.postgres!, `chaos-${RUN}-%`);

    // Ledger 1 reconciled against 2, per phase.
    const { tallies, problems } = reconcile(results, effects, phases);
    t.diagnostic(phaseTable(phases, tallies));
    for (const p of phases)
      t.diagnostic(`${p.name}: attempts by status ${JSON.stringify(tallies.get(p.name)?.attempts)}`);
    t.diagnostic(`queues at the end: ${JSON.stringify(queued)}`);
    // The rotation steps failed no request: every attempt of those first sent in one got 201.
    const failedInRotation = results.filter(
      (r) => strict.has(phaseOf(phases, r).name) && r.statuses.some((s) => s !== 201),
    );
    for (const r of failedInRotation.slice(0, 10)) {
      t.diagnostic(`${r.marker} (${phaseOf(phases, r).name}): ${JSON.stringify(r.failures)}`);
      for (const f of r.failures ?? []) {
        if (f.requestId === undefined) continue;
        for (const p of [...tt.gateways.map((g) => g.gateway), ...tt.brokers.map((b) => b.process)])
          for (const l of p.lines.filter((x) => x.includes(f.requestId!)).slice(0, 5))
            t.diagnostic(`  ${l.slice(0, 400)}`);
      }
    }
    assert.ok(results.length > 200, `a steady stream: ${results.length} requests`);
    for (const p of phases) assert.ok((tallies.get(p.name)?.sent ?? 0) > 0, `${p.name}: requests were sent`);
    assert.deepEqual(problems, []);
    assert.deepEqual(
      failedInRotation.map((r) => `${r.marker}: ${r.statuses.join(',')}`),
      [],
      'every attempt of every request of a rotation step was answered 201',
    );
    assert.equal(
      Object.values(queued).reduce((a, b) => a + b, 0),
      0,
      'the queues hold nothing',
    );
  });
});
