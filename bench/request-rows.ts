// The request-path measurement: each system at saturation (closed loop), then each at one fixed
// rate (open loop, half the peer's saturation rate), for a small and a 16 KiB body. The same
// load generator (bench/load.ts) drives every row, from a host of the world.
import type { Host } from '../world/world.js';
import type { LoadResult, LoadSpec } from './load.js';
import { sampleTree } from './proc.js';

export type System = 'direct' | 'peer' | 'nonstop';
export const SYSTEMS: readonly System[] = ['direct', 'peer', 'nonstop'];

export interface Target {
  readonly system: System;
  /** Where the load generator runs. */
  readonly client: Host;
  readonly spec: Pick<LoadSpec, 'url' | 'kind' | 'ca' | 'cert' | 'key' | 'servername'>;
  /** The processes on this system's path (name → pid; each counted with its children). */
  readonly processes: () => Readonly<Record<string, number>>;
}

export interface BodySize {
  readonly name: string;
  readonly textBytes: number;
}

export const BODIES: readonly BodySize[] = [
  { name: 'small', textBytes: 0 },
  { name: '16 KiB', textBytes: 16 * 1024 },
];

export interface RowTiming {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly concurrency: number;
  /**
   * Runs per system, interleaved (direct, peer, nonstop, direct, …), at saturation and at the
   * fixed rate; the best one counts (most req/s, lowest p99), so that a burst from another
   * tenant of a shared machine hurts no system alone.
   */
  readonly rounds?: number;
}

export interface RequestRow {
  readonly system: System;
  readonly body: string;
  readonly saturation: LoadResult;
  /** req/s of every saturation round, in order. */
  readonly saturationRounds: readonly number[];
  /** p99 of every fixed-rate round, in order (the lowest counts). */
  readonly fixedRoundsP99: readonly number[];
  /** CPU milliseconds per request of each process on the path, in the best saturation round. */
  readonly cpuMsPerRequest: Readonly<Record<string, number>>;
  readonly fixed: LoadResult & { readonly rate: number };
}

export async function runLoadIn(client: Host, spec: LoadSpec): Promise<LoadResult> {
  const r = await client.runNode('dist/bench/load.js', [JSON.stringify(spec)], {
    timeoutMs: (spec.seconds + spec.warmupSeconds + 60) * 1000,
  });
  if (r.code !== 0) throw new Error(`load generator failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as LoadResult;
}

/**
 * Saturation for every target, then the fixed rate for every target. The open-loop runs keep
 * the same pool of connections as the closed-loop ones: a request due while all are busy waits
 * for one, and that wait counts in its latency. (An unbounded pool would turn every stall into a
 * storm of new TLS handshakes, which costs the Node servers far more than nginx.) `during` wraps each
 * saturation run of a system (to sample CPU and memory while it runs).
 */
export async function measureRequestPath(
  targets: readonly Target[],
  timing: RowTiming,
  progress: (line: string) => void,
  during: (system: System, run: () => Promise<LoadResult>) => Promise<LoadResult> = (_s, run) => run(),
): Promise<RequestRow[]> {
  const rows: RequestRow[] = [];
  const { rounds = 1, ...load } = timing;
  for (const body of BODIES) {
    const saturation = new Map<System, LoadResult>();
    const cpu = new Map<System, Record<string, number>>();
    const perRound = new Map<System, number[]>();
    for (let round = 0; round < rounds; round++) {
      for (const t of targets) {
        const spec: LoadSpec = { ...t.spec, ...load, textBytes: body.textBytes, mode: 'closed' };
        const pids = t.processes();
        const before = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, sampleTree(pid)]));
        const r = await during(t.system, () => runLoadIn(t.client, spec));
        // CPU over every request of the run, warm-up included.
        const sent = Math.max(1, r.answered);
        const perRequest: Record<string, number> = {};
        for (const [n, pid] of Object.entries(pids))
          perRequest[n] = Number(
            (((sampleTree(pid).cpuSeconds - (before[n]?.cpuSeconds ?? 0)) * 1000) / sent).toFixed(3),
          );
        progress(
          `${t.system} ${body.name}: saturation ${r.perSecond} req/s (p99 ${r.p99} ms); CPU ms/request ${JSON.stringify(perRequest)}`,
        );
        perRound.set(t.system, [...(perRound.get(t.system) ?? []), r.perSecond]);
        const best = saturation.get(t.system);
        if (best === undefined || r.perSecond > best.perSecond) {
          saturation.set(t.system, r);
          cpu.set(t.system, perRequest);
        }
      }
    }
    const peer = saturation.get('peer') ?? saturation.values().next().value;
    const rate = Math.max(10, Math.round((peer?.perSecond ?? 20) / 2));
    const fixed = new Map<System, LoadResult>();
    const fixedRounds = new Map<System, number[]>();
    for (let round = 0; round < rounds; round++) {
      for (const t of targets) {
        const spec: LoadSpec = { ...t.spec, ...load, textBytes: body.textBytes, mode: 'open', rate };
        const r = await runLoadIn(t.client, spec);
        progress(`${t.system} ${body.name}: at ${rate} req/s p50 ${r.p50} ms, p99 ${r.p99} ms`);
        fixedRounds.set(t.system, [...(fixedRounds.get(t.system) ?? []), r.p99]);
        const best = fixed.get(t.system);
        if (best === undefined || r.p99 < best.p99) fixed.set(t.system, r);
      }
    }
    for (const t of targets)
      rows.push({
        system: t.system,
        body: body.name,
        saturation: saturation.get(t.system)!,
        saturationRounds: perRound.get(t.system) ?? [],
        cpuMsPerRequest: cpu.get(t.system) ?? {},
        fixed: { ...fixed.get(t.system)!, rate },
        fixedRoundsP99: fixedRounds.get(t.system) ?? [],
      });
  }
  return rows;
}

export interface LightLoadRow {
  readonly system: System;
  readonly rate: number;
  readonly result: LoadResult;
}

/**
 * Each system at a light fixed rate with the small body: the latency of the path itself, with
 * no queueing behind other requests (and where a stall such as Nagle's algorithm shows most).
 */
export async function measureLightLoad(
  targets: readonly Target[],
  timing: RowTiming,
  rate: number,
  progress: (line: string) => void,
): Promise<LightLoadRow[]> {
  const { rounds: _rounds, ...load } = timing;
  const rows: LightLoadRow[] = [];
  for (const t of targets) {
    const result = await runLoadIn(t.client, { ...t.spec, ...load, textBytes: 0, mode: 'open', rate });
    progress(`${t.system} small: at ${rate} req/s p50 ${result.p50} ms, p99 ${result.p99} ms`);
    rows.push({ system: t.system, rate, result });
  }
  return rows;
}
