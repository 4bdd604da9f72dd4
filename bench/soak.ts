// The soak (issue #16): the whole world (core on PostgreSQL) under an open-loop load at half of
// nonstop's own saturation, for `--minutes` (30 by default; `--smoke`: 2). Every 10 s window is
// one run of the load generator (bench/load.ts), and after each: the p50/p99 and failures of the
// window, the RSS, PSS and open file descriptors of every daemon (with what it forked), and each
// Redis's RSS. Written to `<out>.json` and `<out>.md`; the summary is each series' growth from
// the end of the warm-up (the first fifth of the run, at least one window) to the end, each end
// the median of a few windows (a thirtieth of the run: one 10 s window's p99 is noise), and the
// goal is flat: every judged series under 10 %. Memory is judged by PSS less shared memory
// ("own"): PostgreSQL's shared memory is its buffer cache, which fills up to shared_buffers as
// the tables grow (bounded by configuration, reported as "shmem", not a leak).
//   sudo npm run soak [-- --minutes 30 --rate N --out bench/results/soak]
import { readdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ThreeTier } from '../world/three-tier.js';
import { runLoadIn } from './request-rows.js';
import { processTree, sampleTree, treePss } from './proc.js';
import type { LoadSpec } from './load.js';

const WINDOW_SECONDS = 10;
const GOAL_GROWTH = 0.1;

export interface SoakSample {
  /** Seconds since the load started, at the window's end. */
  readonly t: number;
  readonly requests: number;
  readonly ok: number;
  readonly failures: Record<string, number>;
  readonly p50: number;
  readonly p99: number;
  readonly rssKiB: Record<string, number>;
  /** The same trees' proportional set size (bench/proc.ts treePss). */
  readonly pssKiB: Record<string, number>;
  /** Of which shared memory (Pss_Shmem); absent in results from before it was sampled. */
  readonly shmemKiB?: Record<string, number>;
  readonly fds: Record<string, number>;
}

export interface SoakResult {
  readonly startedAt: string;
  readonly minutes: number;
  readonly rate: number;
  readonly saturation: number;
  readonly warmupSamples: number;
  /** Windows whose median is each end of the growth. */
  readonly spanSamples: number;
  readonly samples: SoakSample[];
  /**
   * Per series (`rss:`, `pss:`, `shmem:`, `own:` and `fds:<daemon>`, `p99`): end over
   * end-of-warm-up, minus 1. `flat` is judged on `own` (PSS less shared memory), descriptors
   * and p99. A tree's summed RSS counts shared memory once per process that touched it (see
   * treePss), and shared memory is PostgreSQL's bounded buffer cache: both are kept beside it.
   */
  readonly growth: Record<string, number>;
  readonly flat: boolean;
}

function openFds(pid: number): number {
  let n = 0;
  for (const p of processTree(pid)) {
    try {
      n += readdirSync(`/proc/${p}/fd`).length;
    } catch {
      // exited
    }
  }
  return n;
}

/** The daemons to watch, by name (each with what it forks: sshd's sessions, a broker's cells). */
function daemons(tt: ThreeTier): Record<string, number> {
  const out: Record<string, number> = {};
  for (const g of tt.gateways) {
    out[`${g.id} gateway`] = g.gateway.pid;
    out[`${g.id} sshd`] = g.sshd.pid;
    out[`${g.id} guard`] = g.guard.pid;
  }
  for (const b of tt.brokers) {
    out[`${b.id} broker`] = b.process.pid;
    for (const r of Object.values(b.redis)) out[`${b.id} redis ${r.gatewayId}`] = r.process.pid;
  }
  out['core'] = tt.core.process.pid;
  if (tt.core.postgres !== null) out['postgres'] = tt.core.postgres.primary.process.pid;
  return out;
}

/** The median of `values` (the mean of the middle two for an even count). */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Growth of each series from the end of the warm-up to the end: the median of the `span`
 * windows ending the warm-up against the median of the last `span`.
 */
export function growthOf(samples: readonly SoakSample[], warmup: number, span = 1): Record<string, number> {
  const end = Math.min(warmup, samples.length);
  const first = samples.slice(Math.max(0, end - span), end);
  const last = samples.slice(Math.max(end, samples.length - span));
  if (first.length === 0 || last.length === 0) return {};
  const growth: Record<string, number> = {};
  const ratio = (a: number, b: number) => (a > 0 ? +(b / a - 1).toFixed(3) : 0);
  const series = (name: string, of: (s: SoakSample) => number) =>
    (growth[name] = ratio(median(first.map(of)), median(last.map(of))));
  const own = (s: SoakSample, daemon: string) => (s.pssKiB[daemon] ?? 0) - (s.shmemKiB?.[daemon] ?? 0);
  const daemons = Object.keys(first[0]!.rssKiB);
  for (const d of daemons) series(`rss:${d}`, (s) => s.rssKiB[d] ?? 0);
  for (const d of daemons) series(`pss:${d}`, (s) => s.pssKiB[d] ?? 0);
  if (first[0]!.shmemKiB !== undefined) {
    for (const d of daemons.filter((x) => samples.some((s) => (s.shmemKiB?.[x] ?? 0) > 0)))
      series(`shmem:${d}`, (s) => s.shmemKiB?.[d] ?? 0);
    for (const d of daemons) series(`own:${d}`, (s) => own(s, d));
  }
  for (const d of Object.keys(first[0]!.fds)) series(`fds:${d}`, (s) => s.fds[d] ?? 0);
  series('p99', (s) => s.p99);
  return growth;
}

/**
 * Every judged series under the goal: memory by PSS less shared memory where that was sampled
 * (else by PSS), descriptors, p99. RSS, PSS and shared memory alone are reported, not judged.
 */
export function isFlat(growth: Readonly<Record<string, number>>): boolean {
  const hasOwn = Object.keys(growth).some((k) => k.startsWith('own:'));
  const judged = ([series]: [string, number]) =>
    !series.startsWith('rss:') && !series.startsWith('shmem:') && !(hasOwn && series.startsWith('pss:'));
  return Object.entries(growth)
    .filter(judged)
    .every(([, g]) => g < GOAL_GROWTH);
}

const mib = (kib: number | undefined) => ((kib ?? 0) / 1024).toFixed(1);

function markdown(r: SoakResult): string {
  const names = Object.keys(r.samples[0]?.rssKiB ?? {});
  const lines = [
    `# Soak, ${r.startedAt}: ${r.minutes} min at ${r.rate} req/s (saturation ${r.saturation} req/s)`,
    '',
    `Growth after the warm-up (${r.warmupSamples} windows of ${WINDOW_SECONDS} s), the median of ` +
      `${r.spanSamples} windows at each end: ${r.flat ? 'flat' : 'NOT flat'} (goal: every judged series ` +
      `under ${GOAL_GROWTH * 100} %; memory judged by "own", PSS less shared memory; RSS, PSS and ` +
      "shmem, PostgreSQL's buffer cache bounded by shared_buffers, reported beside it).",
    '',
    '| series | growth |',
    '|---|---|',
    ...Object.entries(r.growth).map(([k, v]) => `| ${k} | ${(v * 100).toFixed(1)} % |`),
    '',
    `| t (s) | ok | failed | p50 ms | p99 ms | ${names.map((n) => `${n} RSS / PSS / own MiB`).join(' | ')} |`,
    `|---|---|---|---|---|${names.map(() => '---|').join('')}`,
    ...r.samples.map(
      (s) =>
        `| ${s.t} | ${s.ok} | ${s.requests - s.ok} | ${s.p50} | ${s.p99} | ` +
        `${names
          .map((n) => {
            const pss = s.pssKiB[n] ?? 0;
            return `${mib(s.rssKiB[n])} / ${mib(pss)} / ${mib(pss - (s.shmemKiB?.[n] ?? 0))}`;
          })
          .join(' | ')} |`,
    ),
    '',
  ];
  return lines.join('\n');
}

export async function soak(options: {
  minutes: number;
  rate?: number;
  out: string;
  progress?: (line: string) => void;
}): Promise<SoakResult> {
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const tt = await ThreeTier.start({ corePostgres: true });
  try {
    await tt.waitUntilServing(90_000);
    const gw = tt.gateways[0]!;
    const base: Omit<LoadSpec, 'mode' | 'seconds' | 'warmupSeconds' | 'concurrency'> = {
      url: gw.httpsUrl,
      kind: 'public',
      textBytes: 0,
      ca: tt.publicCaFile,
    };
    const saturation = await runLoadIn(tt.inet, {
      ...base,
      mode: 'closed',
      seconds: 10,
      warmupSeconds: 3,
      concurrency: 32,
    });
    const rate = options.rate ?? Math.max(1, Math.round(saturation.perSecond / 2));
    progress(`saturation ${saturation.perSecond.toFixed(0)} req/s; soaking at ${rate} req/s`);
    const windows = Math.max(2, Math.round((options.minutes * 60) / WINDOW_SECONDS));
    const warmupSamples = Math.max(1, Math.round(windows / 5));
    const samples: SoakSample[] = [];
    const started = Date.now();
    for (let i = 0; i < windows; i++) {
      const r = await runLoadIn(tt.inet, {
        ...base,
        mode: 'open',
        rate,
        seconds: WINDOW_SECONDS,
        warmupSeconds: 0,
        concurrency: 64,
      });
      const rssKiB: Record<string, number> = {};
      const pssKiB: Record<string, number> = {};
      const shmemKiB: Record<string, number> = {};
      const fds: Record<string, number> = {};
      for (const [name, pid] of Object.entries(daemons(tt))) {
        rssKiB[name] = sampleTree(pid).rssKiB;
        ({ pssKiB: pssKiB[name], shmemKiB: shmemKiB[name] } = treePss(pid));
        fds[name] = openFds(pid);
      }
      const sample: SoakSample = {
        t: Math.round((Date.now() - started) / 1000),
        requests: r.requests,
        ok: r.ok,
        failures: r.failures,
        p50: r.p50,
        p99: r.p99,
        rssKiB,
        pssKiB,
        shmemKiB,
        fds,
      };
      samples.push(sample);
      progress(`[soak ${sample.t} s] ${r.ok}/${r.requests} ok, p99 ${r.p99} ms`);
    }
    const spanSamples = Math.max(1, Math.round(windows / 30));
    const growth = growthOf(samples, warmupSamples, spanSamples);
    const result: SoakResult = {
      startedAt: new Date(started).toISOString(),
      minutes: options.minutes,
      rate,
      saturation: Math.round(saturation.perSecond),
      warmupSamples,
      spanSamples,
      samples,
      growth,
      flat: isFlat(growth),
    };
    writeFileSync(`${options.out}.json`, `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(`${options.out}.md`, markdown(result));
    progress(`wrote ${options.out}.{json,md}: ${result.flat ? 'flat' : 'not flat'}`);
    return result;
  } finally {
    await tt.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string' },
      rate: { type: 'string' },
      out: { type: 'string', default: 'bench/results/soak' },
      smoke: { type: 'boolean', default: false },
    },
  });
  const minutes = Number(values.minutes ?? (values.smoke ? 2 : 30));
  if (!(minutes > 0)) throw new Error(`--minutes must be a positive number, not ${values.minutes}`);
  const rate = values.rate === undefined ? undefined : Number(values.rate);
  if (rate !== undefined && !(rate > 0))
    throw new Error(`--rate must be a positive number, not ${values.rate}`);
  await soak({ minutes, out: values.out, ...(rate === undefined ? {} : { rate }) });
}
