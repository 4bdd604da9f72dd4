// What the attack and chaos suites read off a broker host: which Redis serves a gateway there
// (one shared Redis per broker, or one per gateway), its memory as its admin sees it, and a
// process's peak resident memory (VmHWM, whose peak can be reset between measurements).
import { readFileSync, writeFileSync } from 'node:fs';
import type { BrokerNode } from '../../world/three-tier.js';
import { HostProcess } from '../../world/world.js';

export interface RedisView {
  readonly port: number;
  readonly adminUser: string;
  readonly adminPasswordFile: string;
  readonly process: HostProcess;
}

/**
 * The Redis that holds `gatewayId`'s queue on broker `b`: `BrokerNode.redis` is either the one
 * process every gateway shares or a record of one Redis per gateway.
 */
export function redisOf(b: BrokerNode, gatewayId: string): RedisView {
  const node = b as unknown as Record<string, unknown>;
  const redis = node.redis;
  if (redis instanceof HostProcess)
    return {
      port: Number(node.redisPort),
      adminUser: String(node.adminUser),
      adminPasswordFile: String(node.adminPasswordFile),
      process: redis,
    };
  const mine = (redis as Record<string, Record<string, unknown>> | undefined)?.[gatewayId];
  if (mine === undefined || !(mine.process instanceof HostProcess))
    throw new Error(`broker ${b.id} has no Redis for ${gatewayId}`);
  return {
    port: Number(mine.port),
    adminUser: String(mine.adminUser),
    adminPasswordFile: String(mine.adminPasswordFile),
    process: mine.process,
  };
}

/** Every distinct Redis on broker `b` that serves one of `gatewayIds`. */
export function redisesOf(b: BrokerNode, gatewayIds: readonly string[]): RedisView[] {
  const seen = new Map<number, RedisView>();
  for (const g of gatewayIds) {
    const v = redisOf(b, g);
    seen.set(v.port, v);
  }
  return [...seen.values()];
}

/** redis-cli as that Redis's admin user, inside the broker host. */
export async function adminCli(
  b: BrokerNode,
  v: RedisView,
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

export async function redisMemory(b: BrokerNode, v: RedisView): Promise<RedisMemory> {
  const info = await adminCli(b, v, ['INFO', 'memory'], 5000);
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
  return {
    usedBytes: field('used_memory'),
    rssBytes: field('used_memory_rss'),
    maxmemoryBytes: field('maxmemory'),
  };
}

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
