// The soak (issue #16): the whole world (core on PostgreSQL) under an open-loop load at half of
// nonstop's own saturation, for `--minutes` (30 by default; `--smoke`: 2). Every 10 s window is
// one run of the load generator (bench/load.ts), and after each: the p50/p99 and failures of the
// window, the RSS, PSS and open file descriptors of every daemon (with what it forked), and each
// Redis's RSS. Written to `<out>.json` and `<out>.md`; the summary is each series' growth from
// the end of the warm-up (the first fifth of the run, at least one window) to the end, and the
// goal is flat: every series under 10 %.
//   sudo npm run soak [-- --minutes 30 --rate N --out bench/results/soak]
import { readdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ThreeTier } from '../world/three-tier.js';
import { runLoadIn } from './request-rows.js';
import { processTree, sampleTree, treePssKiB } from './proc.js';
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
  /** The same trees' proportional set size (bench/proc.ts treePssKiB). */
  readonly pssKiB: Record<string, number>;
  readonly fds: Record<string, number>;
}

export interface SoakResult {
  readonly startedAt: string;
  readonly minutes: number;
  readonly rate: number;
  readonly saturation: number;
  readonly warmupSamples: number;
  readonly samples: SoakSample[];
  /**
   * Per series (`rss:<daemon>`, `pss:<daemon>`, `fds:<daemon>`, `p99`): end over end-of-warm-up,
   * minus 1. `flat` is judged on PSS, not RSS: a tree's summed RSS counts shared memory once per
   * process that touched it (see treePssKiB); RSS is kept beside it.
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

/** Growth of each series from the sample ending the warm-up to the last one. */
export function growthOf(samples: readonly SoakSample[], warmup: number): Record<string, number> {
  const base = samples[Math.min(warmup, samples.length) - 1];
  const last = samples.at(-1);
  if (base === undefined || last === undefined || base === last) return {};
  const growth: Record<string, number> = {};
  const ratio = (a: number, b: number) => (a > 0 ? +(b / a - 1).toFixed(3) : 0);
  for (const [name, kib] of Object.entries(base.rssKiB))
    growth[`rss:${name}`] = ratio(kib, last.rssKiB[name] ?? 0);
  for (const [name, kib] of Object.entries(base.pssKiB))
    growth[`pss:${name}`] = ratio(kib, last.pssKiB[name] ?? 0);
  for (const [name, n] of Object.entries(base.fds)) growth[`fds:${name}`] = ratio(n, last.fds[name] ?? 0);
  growth['p99'] = ratio(base.p99, last.p99);
  return growth;
}

/** Every series under the goal; memory is judged by PSS (RSS series are for comparison). */
export function isFlat(growth: Readonly<Record<string, number>>): boolean {
  return Object.entries(growth).every(([series, g]) => series.startsWith('rss:') || g < GOAL_GROWTH);
}

const mib = (kib: number | undefined) => ((kib ?? 0) / 1024).toFixed(1);

function markdown(r: SoakResult): string {
  const names = Object.keys(r.samples[0]?.rssKiB ?? {});
  const lines = [
    `# Soak, ${r.startedAt}: ${r.minutes} min at ${r.rate} req/s (saturation ${r.saturation} req/s)`,
    '',
    `Growth after the warm-up (${r.warmupSamples} windows of ${WINDOW_SECONDS} s): ` +
      `${r.flat ? 'flat' : 'NOT flat'} (goal: every series under ${GOAL_GROWTH * 100} %, memory by PSS; RSS for comparison).`,
    '',
    '| series | growth |',
    '|---|---|',
    ...Object.entries(r.growth).map(([k, v]) => `| ${k} | ${(v * 100).toFixed(1)} % |`),
    '',
    `| t (s) | ok | failed | p50 ms | p99 ms | ${names.map((n) => `${n} RSS / PSS MiB`).join(' | ')} |`,
    `|---|---|---|---|---|${names.map(() => '---|').join('')}`,
    ...r.samples.map(
      (s) =>
        `| ${s.t} | ${s.ok} | ${s.requests - s.ok} | ${s.p50} | ${s.p99} | ` +
        `${names.map((n) => `${mib(s.rssKiB[n])} / ${mib(s.pssKiB[n])}`).join(' | ')} |`,
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
      const fds: Record<string, number> = {};
      for (const [name, pid] of Object.entries(daemons(tt))) {
        rssKiB[name] = sampleTree(pid).rssKiB;
        pssKiB[name] = treePssKiB(pid);
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
        fds,
      };
      samples.push(sample);
      progress(`[soak ${sample.t} s] ${r.ok}/${r.requests} ok, p99 ${r.p99} ms`);
    }
    const growth = growthOf(samples, warmupSamples);
    const result: SoakResult = {
      startedAt: new Date(started).toISOString(),
      minutes: options.minutes,
      rate,
      saturation: Math.round(saturation.perSecond),
      warmupSamples,
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
