// What `npm run bench` writes: the results as JSON, a markdown table, and an SVG chart drawn
// here (no chart service), from one BenchResults.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, release } from 'node:os';
import type { LightLoadRow, RequestRow, System } from './request-rows.js';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly nginx: string;
  readonly openssh: string;
  /** 1, 5 and 15 minute load averages when the run started and ended (others share this machine). */
  readonly loadAverage: readonly number[];
  readonly loadAverageBefore?: readonly number[];
  /** A DAMON kdamond is on: the kernel pages out memory it finds cold, so RSS can shrink. */
  readonly damonReclaim: boolean;
}

export interface Recovery {
  /** Broker started (tunnels down) → first request served through a gateway. */
  readonly brokerStartToFirstMs?: number;
  /** Of which: broker started → its tunnel into that gateway up (knock, SSH, remote forward). */
  readonly brokerStartToTunnelUpMs?: number;
  /** Gateway sshd killed (its tunnels with it) and restarted → next request served through it. */
  readonly sshdRestartMs?: number;
  /** One of two brokers SIGKILLed under a request stream → next request served. */
  readonly brokerDeathMs?: number;
  /** Requests of that stream that did not get a 201, and what they got. */
  readonly brokerDeathFailures?: Record<string, number>;
}

export interface FloodCost {
  readonly packets: number;
  readonly floodSeconds: number;
  readonly cpuSeconds: number;
  /** Of which in the kernel. */
  readonly systemSeconds: number;
  readonly cpuSecondsPer10k: number;
  readonly rssKiBBefore: number;
  readonly rssKiBAfter: number;
  /** Packets the daemon itself saw (guard: its `received`; knockd: not reported). */
  readonly seen?: number;
}

export interface GuardCost {
  /** While the gateway served HTTP at saturation (the nonstop small-body run). */
  readonly httpSaturation?: {
    readonly requests: number;
    readonly seconds: number;
    readonly cpuSeconds: number;
    readonly rssKiB: number;
    readonly packetsSeenDelta?: number;
  };
  readonly flood?: { readonly guard: FloodCost; readonly knockd: FloodCost };
  /** A flood of SPA-looking datagrams: the guard as configured, with its limits lifted, fwknopd. */
  readonly spaFlood?: {
    readonly guard: FloodCost;
    readonly guardUnlimited: FloodCost;
    readonly fwknopd: FloodCost;
  };
}

export interface BenchResults {
  readonly name: string;
  readonly date: string;
  readonly smoke: boolean;
  readonly command: string;
  readonly machine: Machine;
  readonly secondsPerRow: number;
  /** Interleaved runs per system at saturation and at the fixed rate; the best counts. */
  readonly rounds: number;
  readonly totalSeconds?: number;
  readonly requestPath: readonly RequestRow[];
  readonly lightLoad?: readonly LightLoadRow[];
  readonly recovery?: Recovery;
  readonly guard?: GuardCost;
  /** Resident memory (KiB) of each nonstop daemon. */
  readonly rss?: { readonly idle: Record<string, number>; readonly saturation: Record<string, number> };
}

function floodRow(who: string, c: FloodCost): string {
  return `| ${who} | ${c.packets} | ${c.seen ?? '–'} | ${fmt(c.cpuSeconds, 2)} (${fmt(c.systemSeconds, 2)}) | ${fmt(c.cpuSecondsPer10k, 3)} | ${fmt(c.rssKiBBefore / 1024, 1)} → ${fmt(c.rssKiBAfter / 1024, 1)} |`;
}

/** A tool's version from its output (nginx -v and ssh -V print it on stderr). */
function versionOf(commandLine: string, pattern: RegExp): string {
  try {
    return (
      pattern.exec(execFileSync('sh', ['-c', `${commandLine} 2>&1`], { encoding: 'utf8' }))?.[1] ?? 'unknown'
    );
  } catch {
    return 'unknown';
  }
}

function damonOn(): boolean {
  const dir = '/sys/kernel/mm/damon/admin/kdamonds';
  try {
    return readdirSync(dir).some((d) => readFileSync(`${dir}/${d}/state`, 'utf8').trim() === 'on');
  } catch {
    return false;
  }
}

export function machine(): Machine {
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    nginx: versionOf('nginx -v', /nginx\/(\S+)/),
    openssh: versionOf('ssh -V', /(OpenSSH_[^,\s]+)/),
    loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
    damonReclaim: damonOn(),
  };
}

const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits);
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b;

function row(rows: readonly RequestRow[], system: System, body: string): RequestRow | undefined {
  return rows.find((r) => r.system === system && r.body === body);
}

export function bodies(rows: readonly RequestRow[]): string[] {
  return [...new Set(rows.map((r) => r.body))];
}

export interface Ratios {
  readonly body: string;
  readonly throughputVsPeer?: number;
  readonly throughputVsDirect?: number;
  readonly p50VsPeer?: number;
  readonly p99VsPeer?: number;
  readonly p99VsDirect?: number;
}

export function ratios(rows: readonly RequestRow[]): Ratios[] {
  return bodies(rows).map((body) => {
    const n = row(rows, 'nonstop', body);
    const p = row(rows, 'peer', body);
    const d = row(rows, 'direct', body);
    return {
      body,
      throughputVsPeer: ratio(n?.saturation.perSecond, p?.saturation.perSecond),
      throughputVsDirect: ratio(n?.saturation.perSecond, d?.saturation.perSecond),
      p50VsPeer: ratio(n?.fixed.p50, p?.fixed.p50),
      p99VsPeer: ratio(n?.fixed.p99, p?.fixed.p99),
      p99VsDirect: ratio(n?.fixed.p99, d?.fixed.p99),
    };
  });
}

const failed = (r: { failures: Record<string, number> }) =>
  Object.values(r.failures).reduce((a, b) => a + b, 0);

export function renderMarkdown(r: BenchResults): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`# nonstop bench: ${r.name}${r.smoke ? ' (smoke run: figures are not meaningful)' : ''}`, '');
  out.push(
    `${r.date} · \`${r.command}\` · ${r.secondsPerRow} s per row` +
      (r.totalSeconds !== undefined ? ` · whole run ${r.totalSeconds} s` : ''),
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}, ` +
      `nginx ${m.nginx}, ${m.openssh}; load average ${(m.loadAverageBefore ?? []).join(' ')} at the start, ` +
      `${m.loadAverage.join(' ')} at the end (the machine is shared).`,
    '',
    '## Request path (POST /notes → notes.create, one transaction in the core)',
    '',
    '| body | system | req/s at saturation | p50 ms at fixed rate | p99 ms at fixed rate | fixed rate req/s | failed (sat / fixed) |',
    '|---|---|---:|---:|---:|---:|---:|',
  );
  for (const x of r.requestPath)
    out.push(
      `| ${x.body} | ${x.system} | ${x.saturation.perSecond} | ${fmt(x.fixed.p50, 1)} | ${fmt(x.fixed.p99, 1)} | ${x.fixed.rate} | ${failed(x.saturation)} / ${failed(x.fixed)} |`,
    );
  out.push(
    '',
    `Each system ran ${r.rounds} time${r.rounds === 1 ? '' : 's'} at saturation and at the fixed rate (half the peer's saturation rate), ` +
      'interleaved with the others; the table shows the best (most req/s; lowest p99), the JSON every round. ' +
      'Latency at the fixed rate runs from when each request was due (open loop, 32 connections).',
  );
  out.push(
    '',
    '| body | nonstop/peer req/s | nonstop/direct req/s | nonstop/peer p50 | nonstop/peer p99 | nonstop/direct p99 |',
    '|---|---:|---:|---:|---:|---:|',
  );
  for (const q of ratios(r.requestPath))
    out.push(
      `| ${q.body} | ${fmt(q.throughputVsPeer, 2)} | ${fmt(q.throughputVsDirect, 2)} | ${fmt(q.p50VsPeer, 2)} | ${fmt(q.p99VsPeer, 2)} | ${fmt(q.p99VsDirect, 2)} |`,
    );
  if (r.lightLoad !== undefined && r.lightLoad.length > 0) {
    const rate = r.lightLoad[0]!.rate;
    const peer = r.lightLoad.find((x) => x.system === 'peer')?.result;
    out.push(
      '',
      `### Light load: small body at ${rate} req/s (the path's own latency, nothing queued)`,
      '',
      '| system | p50 ms | p99 ms | p50 / peer | p99 / peer |',
      '|---|---:|---:|---:|---:|',
    );
    for (const x of r.lightLoad)
      out.push(
        `| ${x.system} | ${fmt(x.result.p50, 1)} | ${fmt(x.result.p99, 1)} | ${fmt(ratio(x.result.p50, peer?.p50), 2)} | ${fmt(ratio(x.result.p99, peer?.p99), 2)} |`,
      );
  }
  const withCpu = r.requestPath.filter((x) => Object.keys(x.cpuMsPerRequest).length > 0);
  if (withCpu.length > 0) {
    out.push(
      '',
      '### Where the CPU goes at saturation (CPU ms per request, by process; the load generator not counted)',
      '',
      '| body | system | total | by process |',
      '|---|---|---:|---|',
    );
    for (const x of withCpu) {
      const total = Object.values(x.cpuMsPerRequest).reduce((a, b) => a + b, 0);
      const parts = Object.entries(x.cpuMsPerRequest)
        .map(([n, ms]) => `${n} ${ms.toFixed(2)}`)
        .join(' · ');
      out.push(`| ${x.body} | ${x.system} | ${total.toFixed(2)} | ${parts} |`);
    }
  }
  if (r.recovery !== undefined) {
    const v = r.recovery;
    out.push(
      '',
      '## Start and recovery',
      '',
      '| event | until the next request is served |',
      '|---|---:|',
      `| broker start (no tunnel yet) → first request through a gateway | ${fmt(v.brokerStartToFirstMs)} ms |`,
      `| … of which broker start → its tunnel up (process start, knock, SSH, forward) | ${fmt(v.brokerStartToTunnelUpMs)} ms |`,
      `| gateway sshd killed and restarted → request through it again | ${fmt(v.sshdRestartMs)} ms |`,
      `| one of two brokers SIGKILLed → next request served | ${fmt(v.brokerDeathMs)} ms |`,
    );
    if (v.brokerDeathFailures !== undefined)
      out.push(
        '',
        `Answers other than 201 in the stream around the broker kill: ${JSON.stringify(v.brokerDeathFailures)}.`,
      );
  }
  if (r.guard !== undefined) {
    out.push('', '## Knock guard cost', '');
    const h = r.guard.httpSaturation;
    if (h !== undefined)
      out.push(
        `While the gateway served ${h.requests} requests at saturation (${h.seconds} s): guard CPU ${fmt(h.cpuSeconds, 2)} s, ` +
          `RSS ${fmt(h.rssKiB / 1024, 1)} MiB` +
          (h.packetsSeenDelta !== undefined ? `, packets the guard saw: ${h.packetsSeenDelta}` : '') +
          '.',
        '',
      );
    const f = r.guard.flood;
    if (f !== undefined) {
      out.push(
        '| under the same SYN flood | packets | packets it read | CPU s (kernel) | CPU s per 10k packets | RSS before → after MiB |',
        '|---|---:|---:|---:|---:|---:|',
      );
      for (const [who, c] of [
        ['nonstop guard', f.guard],
        ['knockd', f.knockd],
      ] as const)
        out.push(floodRow(who, c));
    }
    const spa = r.guard.spaFlood;
    if (spa !== undefined) {
      out.push(
        '',
        '| under the same flood of SPA-looking UDP (2 clients each) | packets | packets it read | CPU s (kernel) | CPU s per 10k packets | RSS before → after MiB |',
        '|---|---:|---:|---:|---:|---:|',
      );
      for (const [who, c] of [
        ['nonstop guard (its nftables limits)', spa.guard],
        ['nonstop guard (limits lifted)', spa.guardUnlimited],
        ['fwknopd', spa.fwknopd],
      ] as const)
        out.push(floodRow(who, c));
    }
  }
  if (r.rss !== undefined) {
    out.push('', '## Resident memory of the nonstop daemons (MiB)', '');
    if (r.machine.damonReclaim)
      out.push(
        'This kernel runs DAMON reclaim, which pages out memory it finds cold: a figure can shrink over the run.',
        '',
      );
    out.push('| daemon | idle (after start) | peak while the nonstop rows ran |', '|---|---:|---:|');
    for (const d of Object.keys(r.rss.idle))
      out.push(
        `| ${d} | ${fmt((r.rss.idle[d] ?? NaN) / 1024, 1)} | ${fmt((r.rss.saturation[d] ?? NaN) / 1024, 1)} |`,
      );
  }
  out.push('');
  return out.join('\n');
}

const COLORS: Record<System, string> = { direct: '#7f8c8d', peer: '#2980b9', nonstop: '#e67e22' };

/** Two panels: req/s at saturation, and p50/p99 at the fixed rate; one group of bars per body. */
export function renderSvg(r: BenchResults): string {
  const rows = r.requestPath;
  const groups = bodies(rows);
  const systems = (['direct', 'peer', 'nonstop'] as const).filter((s) => rows.some((x) => x.system === s));
  const W = 860;
  const H = 360;
  const panelW = 380;
  const top = 60;
  const plotH = 220;
  const parts: string[] = [];
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const panel = (
    x0: number,
    title: string,
    values: (s: System, body: string) => number[],
    unit: string,
    shades: number,
  ) => {
    const all = groups.flatMap((g) => systems.flatMap((s) => values(s, g)));
    const max = Math.max(1, ...all.filter(Number.isFinite)) * 1.15;
    parts.push(`<text x="${x0}" y="${top - 24}" font-size="14" font-weight="bold">${esc(title)}</text>`);
    parts.push(
      `<line x1="${x0}" y1="${top + plotH}" x2="${x0 + panelW}" y2="${top + plotH}" stroke="#333"/>`,
    );
    const groupW = panelW / groups.length;
    const barW = Math.min(36, (groupW - 30) / (systems.length * shades));
    groups.forEach((g, gi) => {
      const gx = x0 + gi * groupW + (groupW - barW * systems.length * shades) / 2;
      systems.forEach((s, si) => {
        values(s, g).forEach((v, vi) => {
          const h = Number.isFinite(v) ? (v / max) * plotH : 0;
          const x = gx + (si * shades + vi) * barW;
          const y = top + plotH - h;
          const opacity = vi === 0 ? 1 : 0.55;
          parts.push(
            `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[s]}" fill-opacity="${opacity}"/>`,
          );
          parts.push(
            `<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(y - 4).toFixed(1)}" font-size="9" text-anchor="middle">${Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : '–'}</text>`,
          );
        });
      });
      parts.push(
        `<text x="${(x0 + gi * groupW + groupW / 2).toFixed(1)}" y="${top + plotH + 18}" font-size="12" text-anchor="middle">${esc(g)} body</text>`,
      );
    });
    parts.push(`<text x="${x0}" y="${top + plotH + 36}" font-size="11" fill="#555">${esc(unit)}</text>`);
  };
  const get = (s: System, body: string) => rows.find((x) => x.system === s && x.body === body);
  panel(
    20,
    'Requests/s at saturation (higher is better)',
    (s, b) => [get(s, b)?.saturation.perSecond ?? NaN],
    'req/s',
    1,
  );
  panel(
    W / 2 + 20,
    'Latency at half the peer\u2019s saturation rate (lower is better)',
    (s, b) => [get(s, b)?.fixed.p50 ?? NaN, get(s, b)?.fixed.p99 ?? NaN],
    'ms; solid p50, light p99',
    2,
  );
  systems.forEach((s, i) => {
    parts.push(`<rect x="${20 + i * 110}" y="${H - 22}" width="12" height="12" fill="${COLORS[s]}"/>`);
    parts.push(`<text x="${36 + i * 110}" y="${H - 12}" font-size="12">${s}</text>`);
  });
  parts.push(
    `<text x="${W - 20}" y="${H - 12}" font-size="10" text-anchor="end" fill="#555">${esc(`${r.name} · ${r.date.slice(0, 16)} · ${r.machine.cores} cores (shared)`)}</text>`,
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
