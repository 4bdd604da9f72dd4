// nmap from inside a world host, its XML read into port states per target address. IPv4 and
// IPv6 targets may be mixed: nmap scans one family per run, so each family gets its own run.
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import type { Host } from '../../world/world.js';

export interface Scan {
  /** State of each port nmap listed, by target address. */
  readonly ports: Map<string, Map<number, string>>;
  /** Ports nmap collapsed by state ("filtered": 65533), by target address. */
  readonly collapsed: Map<string, Map<string, number>>;
  readonly raw: string;
}

export interface ScanOptions {
  /** Scan over IPv6 (implied for IPv6 addresses). */
  readonly ipv6?: boolean;
  /** -sS (TCP SYN, the default) or -sU (UDP). */
  readonly type?: '-sS' | '-sU';
  readonly timeoutMs?: number;
  /** Probes per second at the least (nmap --min-rate); default 5000. */
  readonly minRate?: number;
}

/** One scan of every target, one nmap run per address family: fast timing, one retry, no DNS, no ping. */
export async function nmap(
  from: Host,
  targets: readonly string[],
  ports: string,
  options: ScanOptions = {},
): Promise<Scan> {
  const v6 = targets.filter((t) => options.ipv6 === true || isIP(t) === 6);
  const v4 = targets.filter((t) => !v6.includes(t));
  // One run after the other: two scans at --min-rate at once would lose packets to each other.
  const runs: Scan[] = [];
  if (v4.length > 0) runs.push(await nmapFamily(from, v4, ports, { ...options, ipv6: false }));
  if (v6.length > 0) runs.push(await nmapFamily(from, v6, ports, { ...options, ipv6: true }));
  return {
    ports: new Map(runs.flatMap((r) => [...r.ports])),
    collapsed: new Map(runs.flatMap((r) => [...r.collapsed])),
    raw: runs.map((r) => r.raw).join('\n'),
  };
}

async function nmapFamily(
  from: Host,
  targets: readonly string[],
  ports: string,
  options: ScanOptions,
): Promise<Scan> {
  const args = [
    ...(options.ipv6 === true ? ['-6'] : []),
    options.type ?? '-sS',
    '-Pn',
    '-n',
    '-T4',
    '--max-retries',
    '1',
    '--min-rate',
    String(options.minRate ?? 5000),
    '--reason',
    '-p',
    ports,
    '-oX',
    '-',
  ];
  const r = await from.exec('nmap', [...args, ...targets], { timeoutMs: options.timeoutMs ?? 150_000 });
  assert.equal(r.code, 0, r.stderr);
  const scan: Scan = { ports: new Map(), collapsed: new Map(), raw: r.stdout };
  for (const host of r.stdout.split('<host ').slice(1)) {
    const addr = /<address addr="([^"]+)"/.exec(host)?.[1];
    if (addr === undefined) continue;
    const found = new Map<number, string>();
    for (const m of host.matchAll(/<port protocol="(?:tcp|udp)" portid="(\d+)"><state state="([a-z|]+)"/g))
      found.set(Number(m[1]), m[2]!);
    const collapsed = new Map<string, number>();
    for (const m of host.matchAll(/<extraports state="([a-z|]+)" count="(\d+)"/g))
      collapsed.set(m[1]!, Number(m[2]));
    scan.ports.set(addr, found);
    scan.collapsed.set(addr, collapsed);
  }
  return scan;
}

/** A scan of one target: its listed ports and its collapsed counts. */
export async function nmapOne(
  from: Host,
  target: string,
  ports: string,
  options: ScanOptions = {},
): Promise<{ ports: Map<number, string>; collapsed: Map<string, number>; raw: string }> {
  const scan = await nmap(from, [target], ports, options);
  const [only] = scan.ports.keys();
  assert.ok(only !== undefined, `nmap reported nothing for ${target}: ${scan.raw.slice(0, 2000)}`);
  return { ports: scan.ports.get(only)!, collapsed: scan.collapsed.get(only)!, raw: scan.raw };
}

/** Every port `addr` showed open, in order. */
export function openPorts(scan: Scan, addr: string): number[] {
  const ports = scan.ports.get(addr);
  assert.ok(ports, `nmap reported nothing for ${addr}: ${scan.raw.slice(0, 2000)}`);
  return [...ports]
    .filter(([, s]) => s === 'open')
    .map(([p]) => p)
    .sort((a, b) => a - b);
}

/** Every state nmap saw on `addr`, listed or collapsed, with its count. */
export function portStates(scan: Scan, addr: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of scan.ports.get(addr)?.values() ?? []) out[s] = (out[s] ?? 0) + 1;
  for (const [s, n] of scan.collapsed.get(addr) ?? []) out[s] = (out[s] ?? 0) + n;
  return out;
}

/** One line per scanned address: `scan <role> <host> <address>: open [<ports>]` (issue 11's form). */
export function scanLine(scan: Scan, role: string, host: string, addr: string): string {
  return `scan ${role} ${host} ${addr}: open [${openPorts(scan, addr).join(',')}]`;
}
