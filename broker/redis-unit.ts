// The resource budget of one gateway's Redis, outside Redis itself: the systemd drop-in of its
// unit (redis-server@nonstop-<gateway>.service) that `nonstop redis-acl` renders next to its
// redis.conf, and the same values for the namespace world's cgroups. Memory, clients and
// buffers are bounded inside Redis; CPU only the kernel can bound.
import type { RedisServerLimits } from '../config/schemas/broker.js';

const MB = 1024 * 1024;

/** What the unit sets, in systemd's terms. */
export interface RedisBudget {
  /** CPUWeight (systemd's default is 100). */
  readonly cpuWeight: number;
  /** CPUQuota, percent of one CPU; null: no quota. */
  readonly cpuQuotaPercent: number | null;
  /** MemoryMax in bytes. */
  readonly memoryMaxBytes: number;
}

/**
 * The unit's memory ceiling: maxmemory bounds data and client buffers together
 * (maxmemory-clients is half of it), but Redis's own allocator overhead, fragmentation and a
 * lazy free in progress live outside it; twice maxmemory plus 64 MiB leaves room for those and
 * still ends a runaway Redis before it costs the broker its memory.
 */
export function memoryMaxBytes(limits: RedisServerLimits): number {
  return (2 * limits.maxMemoryMb + 64) * MB;
}

export function redisBudget(limits: RedisServerLimits): RedisBudget {
  return {
    cpuWeight: limits.cpuWeight,
    cpuQuotaPercent: limits.cpuQuotaPercent,
    memoryMaxBytes: memoryMaxBytes(limits),
  };
}

/** The drop-in `<out>/<gateway>/unit.conf`, installed as redis-server@nonstop-<gateway>.service.d/nonstop.conf. */
export function renderRedisUnit(gatewayId: string, limits: RedisServerLimits): string {
  const b = redisBudget(limits);
  const lines = [
    `# The unit of gateway ${gatewayId}'s Redis on this broker (rendered by nonstop redis-acl; do not edit).`,
    '[Service]',
    // A core dump would hold queued requests on disk.
    'LimitCORE=0',
    // Above its maxmemory and client buffers: the worst a gateway does ends in its own Redis.
    `MemoryMax=${b.memoryMaxBytes / MB}M`,
    'MemorySwapMax=0',
    // Under contention it yields to the broker and the host's other services (100 each).
    `CPUWeight=${b.cpuWeight}`,
    // Empty resets any quota an earlier drop-in set.
    `CPUQuota=${b.cpuQuotaPercent === null ? '' : `${b.cpuQuotaPercent}%`}`,
  ];
  return `${lines.join('\n')}\n`;
}
