// What the attack and chaos suites read off a broker host: the Redis that serves a gateway there,
// its memory as its admin sees it, and a process's peak resident memory (VmHWM, whose peak can
// be reset between measurements).
import { readFileSync, writeFileSync } from 'node:fs';
import type { BrokerNode, RedisNode } from '../../world/three-tier.js';
import { descendants } from '../../world/world.js';

/** The Redis that holds `gatewayId`'s queue on broker `b` (each gateway has its own). */
export function redisOf(b: BrokerNode, gatewayId: string): RedisNode {
  const r = b.redis[gatewayId];
  if (r === undefined) throw new Error(`broker ${b.id} has no Redis for ${gatewayId}`);
  return r;
}

/** redis-cli as that Redis's admin user, inside the broker host. */
export async function adminCli(
  b: BrokerNode,
  v: RedisNode,
  args: readonly string[],
  timeoutMs = 10_000,
): Promise<string> {
  const password = readFileSync(v.adminPasswordFile, 'utf8').trim();
  const r = await b.host.exec(
    'redis-cli',
    ['--no-auth-warning', '-p', String(v.port), '--user', v.adminUser, '--pass', password, ...args],
    { timeoutMs },
  );
  if (r.code !== 0)
    throw new Error(`redis-cli ${args.join(' ')} on ${b.id}:${v.port}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

export interface RedisMemory {
  readonly usedBytes: number;
  readonly rssBytes: number;
  readonly maxmemoryBytes: number;
}

export async function redisMemory(b: BrokerNode, v: RedisNode): Promise<RedisMemory> {
  const info = await adminCli(b, v, ['INFO', 'memory'], 5000);
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
  return {
    usedBytes: field('used_memory'),
    rssBytes: field('used_memory_rss'),
    maxmemoryBytes: field('maxmemory'),
  };
}

/** A broker's processes: itself and its cells. */
export const brokerPids = (b: BrokerNode): number[] => [b.process.pid, ...descendants(b.process.pid)];

/** Resets a process's peak resident memory (VmHWM) to its current RSS. */
export function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // The process is gone: nothing to reset.
  }
}

/** VmHWM of a process in bytes (0 once it is gone). */
export function peakRss(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

export const mib = (bytes: number) => `${Math.round(bytes / (1 << 20))} MiB`;
