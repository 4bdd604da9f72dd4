// nmap from inside a world host, its XML read into port states per target address.
import assert from 'node:assert/strict';
import type { Host } from '../../world/world.js';

export interface Scan {
  /** State of each port nmap listed, by target address. */
  readonly ports: Map<string, Map<number, string>>;
  /** Ports nmap collapsed by state ("filtered": 65533), by target address. */
  readonly collapsed: Map<string, Map<string, number>>;
  readonly raw: string;
}

export interface ScanOptions {
  readonly ipv6?: boolean;
  /** -sS (TCP SYN, the default) or -sU (UDP). */
  readonly type?: '-sS' | '-sU';
  readonly timeoutMs?: number;
}

/** One scan of every target in one nmap run: fast timing, one retry, no DNS, no ping. */
export async function nmap(
  from: Host,
  targets: readonly string[],
  ports: string,
  options: ScanOptions = {},
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
    '5000',
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
