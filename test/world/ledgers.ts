// The three ledgers of a stream of uniquely marked requests (test/world/chaos-client.ts), and
// their reconciliation, for the chaos suite: what clients were told, what the
// core's database holds, what the queues still hold. A request acknowledged without effect,
// done twice, refused, or left without a definite answer is a problem, counted per phase.
import type { ThreeTier } from '../../world/three-tier.js';
import { adminCli, redisOf } from './broker-probes.js';
import type { ChaosResult } from './chaos-client.js';

export interface Phase {
  readonly name: string;
  readonly start: number;
  end: number;
}

export interface Tally {
  sent: number;
  acknowledged: number;
  refused: number;
  effects: number;
  lost: number;
  duplicated: number;
  undefinite: number;
  retried: number;
  /** Every attempt's status (0: no HTTP answer), counted. */
  attempts: Record<number, number>;
}

export interface Reconciliation {
  readonly tallies: ReadonlyMap<string, Tally>;
  /** One line per request that was lost, duplicated, refused, unanswered, or never sent. */
  readonly problems: readonly string[];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The phase a request is counted in: the one it was first sent in. */
export function phaseOf(phases: readonly Phase[], r: ChaosResult): Phase {
  return phases.find((x) => r.firstSentAt < x.end) ?? phases[phases.length - 1]!;
}

/**
 * Ledger 1 (the clients' results) against ledger 2 (effects per marker in the database), each
 * request counted in the phase it was first sent in. `effects` is consumed.
 */
export function reconcile(
  results: readonly ChaosResult[],
  effects: Map<string, number>,
  phases: readonly Phase[],
): Reconciliation {
  const problems: string[] = [];
  const tallies = new Map<string, Tally>();
  for (const r of results) {
    const p = phaseOf(phases, r);
    const tally = tallies.get(p.name) ?? {
      sent: 0,
      acknowledged: 0,
      refused: 0,
      effects: 0,
      lost: 0,
      duplicated: 0,
      undefinite: 0,
      retried: 0,
      attempts: {},
    };
    tallies.set(p.name, tally);
    const n = effects.get(r.marker) ?? 0;
    effects.delete(r.marker);
    tally.sent++;
    tally.effects += n;
    if (r.attempts > 1) tally.retried++;
    for (const status of r.statuses) tally.attempts[status] = (tally.attempts[status] ?? 0) + 1;
    if (n > 1) {
      tally.duplicated++;
      problems.push(`${r.marker}: ${n} effects (${p.name})`);
    }
    if (r.status === 201) {
      tally.acknowledged++;
      if (n === 0) {
        tally.lost++;
        problems.push(`${r.marker}: acknowledged, no effect (${p.name}; ${r.statuses.join(',')})`);
      }
    } else if (r.status >= 400 && r.status < 500 && r.status !== 409 && r.status !== 429) {
      tally.refused++;
      problems.push(`${r.marker}: refused with ${r.status} (${p.name}; ${r.statuses.join(',')})`);
    } else {
      tally.undefinite++;
      problems.push(`${r.marker}: no definite answer (${p.name}; ${r.statuses.join(',')})`);
    }
  }
  for (const [marker, n] of effects) problems.push(`${marker}: ${n} effects, but no client sent it`);
  return { tallies, problems };
}

/** The per-phase table (markdown) the suites print as a diagnostic. */
export function phaseTable(phases: readonly Phase[], tallies: ReadonlyMap<string, Tally>): string {
  return (
    '| phase | seconds | sent | acknowledged | effects | lost | duplicated | no answer | retried |\n' +
    '|---|---|---|---|---|---|---|---|---|\n' +
    phases
      .map((p) => {
        const x = tallies.get(p.name);
        const seconds = ((p.end - p.start) / 1000).toFixed(1);
        return x === undefined
          ? `| ${p.name} | ${seconds} | 0 | | | | | | |`
          : `| ${p.name} | ${seconds} | ${x.sent} | ${x.acknowledged} | ${x.effects} | ${x.lost} | ${x.duplicated} | ${x.undefinite} | ${x.retried} |`;
      })
      .join('\n')
  );
}

/** Where each gateway's guard log stands now. */
export function guardLines(tt: ThreeTier): Map<string, number> {
  return new Map(tt.gateways.map((g) => [g.id, g.guard.lines.length]));
}

/** The guards' knock outcomes since `from`, counted: opened, failed (and why), expired. */
export function knockCounts(tt: ThreeTier, from: Map<string, number>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const g of tt.gateways) {
    for (const line of g.guard.lines.slice(from.get(g.id) ?? 0)) {
      if (!line.startsWith('{')) continue;
      const entry = JSON.parse(line) as { event?: string; outcome?: string; reason?: string };
      if (entry.event !== 'knock') continue;
      const key =
        entry.outcome === 'failed' ? `failed (${entry.reason?.replace(/\d+/g, 'N')})` : entry.outcome;
      counts[key ?? '?'] = (counts[key ?? '?'] ?? 0) + 1;
    }
  }
  return counts;
}

/** The broker that answered the most jobs in the last second (from its /metrics). */
export async function busiestBroker(tt: ThreeTier): Promise<string> {
  const answered = async (id: string) => {
    const b = tt.broker(id);
    const r = await b.host.exec('curl', ['-s', '-m', '2', `http://127.0.0.1:${b.statusPort}/metrics`]);
    let sum = 0;
    for (const m of r.stdout.matchAll(/^nonstop_broker_jobs_total\{[^}]*outcome="answered"[^}]*\} (\d+)$/gm))
      sum += Number(m[1]);
    return sum;
  };
  const before = await Promise.all(tt.brokers.map((b) => answered(b.id)));
  await sleep(1000);
  const after = await Promise.all(tt.brokers.map((b) => answered(b.id)));
  let best = 0;
  for (let i = 1; i < after.length; i++) if (after[i]! - before[i]! > after[best]! - before[best]!) best = i;
  return tt.brokers[best]!.id;
}

/** Jobs still waiting, active, delayed or prioritized in every broker's Redis, once they drain. */
export async function waitForEmptyQueues(tt: ThreeTier, timeoutMs: number): Promise<Record<string, number>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const counts: Record<string, number> = {};
    for (const b of tt.brokers) {
      for (const g of tt.gateways) {
        for (const state of ['wait', 'active', 'delayed', 'prioritized', 'paused']) {
          const key = `nonstop:gw-${g.id}:${state}`;
          const type = (await redisCli(tt, b.id, g.id, ['TYPE', key])).trim();
          const len =
            type === 'list'
              ? await redisCli(tt, b.id, g.id, ['LLEN', key])
              : type === 'zset'
                ? await redisCli(tt, b.id, g.id, ['ZCARD', key])
                : '0';
          counts[`${b.id}/${g.id}/${state}`] = Number(len.trim());
        }
      }
    }
    if (Object.values(counts).every((n) => n === 0) || Date.now() > end) return counts;
    await sleep(500);
  }
}

/** redis-cli as the admin of the Redis that holds `gatewayId`'s queue on `brokerId`. */
function redisCli(tt: ThreeTier, brokerId: string, gatewayId: string, args: string[]): Promise<string> {
  const b = tt.broker(brokerId);
  return adminCli(b, redisOf(b, gatewayId), args);
}
