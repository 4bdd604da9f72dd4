// One redis-server per gateway on each broker: its redis.conf, its ACL and its unit drop-in (a
// CPU and memory budget: broker/redis-unit.ts), rendered here for both the namespace world and
// Ansible (`nonstop redis-acl`), so what is tested is what is deployed. Each server has its own
// memory, connection, buffer and CPU bounds, so the worst a gateway can do costs only its own Redis; and it stores nothing (no RDB, no AOF): a request
// lost with a Redis is recovered by the client's retry with Idempotency-Key.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gatewayRedis, type BrokerConfig, type RedisServerLimits } from '../config/schemas/broker.js';
import { MAX_REPLY_BYTES, REPLY_BATCH } from '../lib/envelope.js';
import { errors } from '../lib/errors.js';
import { REDIS_HEARTBEAT_MS } from '../lib/redis.js';
import { DEFAULT_WORKER_USER, writeAcl, writeIfChanged, type WrittenAcl } from './redis-acl.js';
import { redisBudget, renderRedisUnit, type RedisBudget } from './redis-unit.js';

const MB = 1024 * 1024;

export interface RedisServerPlan {
  readonly gatewayId: string;
  /** Loopback port (IPv4 127.0.0.1 and, where present, ::1). */
  readonly port: number;
  readonly aclFile: string;
  /** Its working directory: nothing is ever written there (no RDB, no AOF, no config rewrite). */
  readonly dir: string;
  readonly limits: RedisServerLimits;
  /** Under systemd (redis-server@.service): where it writes its pid. */
  readonly pidFile?: string;
}

/**
 * The output buffer a client may leave unread: room for two of the largest jobs (a worker
 * fetching) and for a gateway's whole batch of the largest replies (its reply read).
 */
export function outputBufferHardBytes(limits: RedisServerLimits): number {
  return Math.max(8 * MB, 2 * limits.maxJobBytes, REPLY_BATCH * MAX_REPLY_BYTES);
}

/** The query buffer: one whole job (a bulk argument is read into it) and its command around it. */
export function queryBufferBytes(limits: RedisServerLimits): number {
  return limits.maxJobBytes + MB;
}

/** Every client's buffers together; past it Redis drops the biggest clients first. */
export function clientsMemoryBytes(limits: RedisServerLimits): number {
  return Math.floor((limits.maxMemoryMb * MB) / 2);
}

/** redis.conf of one gateway's Redis. Every directive is chosen; nothing is left to defaults. */
export function renderRedisConfig(plan: RedisServerPlan): string {
  const { limits } = plan;
  if (limits.idleTimeoutSeconds * 1000 < 2 * REDIS_HEARTBEAT_MS)
    throw errors.CONFIG_INVALID(
      `redisServer.idleTimeoutSeconds must be at least ${(2 * REDIS_HEARTBEAT_MS) / 1000}: ` +
        'our own connections send PING only that often',
    );
  const hard = outputBufferHardBytes(limits);
  const lines = [
    `# The Redis of gateway ${plan.gatewayId} on this broker (rendered by nonstop redis-acl; do not edit).`,
    "# Loopback only; stores nothing on disk; its bounds are this gateway's alone.",
    'bind 127.0.0.1 -::1',
    'protected-mode yes',
    `port ${plan.port}`,
    'unixsocket ""',
    'tcp-backlog 128',
    'tcp-keepalive 60',
    // Blocked clients (XREAD BLOCK, BZPOPMIN) are exempt; our other connections PING every minute.
    `timeout ${limits.idleTimeoutSeconds}`,
    'daemonize no',
    ...(plan.pidFile === undefined ? [] : [`pidfile ${plan.pidFile}`]),
    'loglevel notice',
    'logfile ""',
    'syslog-enabled no',
    'always-show-logo no',
    'databases 1',
    // Nothing is written: no snapshots, no append-only file, no config or ACL rewrite.
    `dir ${plan.dir}`,
    'save ""',
    'appendonly no',
    'stop-writes-on-bgsave-error no',
    'rdb-del-sync-files yes',
    `aclfile ${plan.aclFile}`,
    'acllog-max-len 128',
    `maxclients ${limits.maxClients}`,
    // noeviction: BullMQ must never lose a key; past the cap writes fail (that gateway gets 503).
    `maxmemory ${limits.maxMemoryMb}mb`,
    'maxmemory-policy noeviction',
    `maxmemory-clients ${clientsMemoryBytes(limits)}`,
    `proto-max-bulk-len ${limits.maxJobBytes}`,
    `client-query-buffer-limit ${queryBufferBytes(limits)}`,
    // A client that reads its answers drains in milliseconds; one that does not is dropped.
    `client-output-buffer-limit normal ${hard} ${hard / 2} 10`,
    'client-output-buffer-limit replica 1mb 1mb 0',
    'client-output-buffer-limit pubsub 1mb 1mb 0',
    // Freeing a huge key (DEL of a list of millions) happens on a background thread.
    'lazyfree-lazy-eviction yes',
    'lazyfree-lazy-expire yes',
    'lazyfree-lazy-server-del yes',
    'lazyfree-lazy-user-del yes',
    'lazyfree-lazy-user-flush yes',
    'replica-lazy-flush yes',
    'enable-protected-configs no',
    'enable-debug-command no',
    'enable-module-command no',
    'notify-keyspace-events ""',
    'lua-time-limit 5000',
    'slowlog-log-slower-than 10000',
    'slowlog-max-len 128',
    'latency-monitor-threshold 0',
    'crash-log-enabled no',
    'crash-memcheck-enabled no',
  ];
  return `${lines.join('\n')}\n`;
}

/** What `nonstop redis-acl` renders for one gateway's Redis. */
export interface GatewayRedisPlan {
  readonly gatewayId: string;
  readonly port: number;
  readonly prefix: string;
  readonly workerUser: string;
}

export interface RenderOptions {
  /** The folder the files are installed in on the host, when not `out` itself (Ansible). */
  readonly installDir?: string;
  /** Rendered for Debian's redis-server@.service (instance `nonstop-<gateway id>`). */
  readonly systemd?: boolean;
}

export interface WrittenRedisServer extends WrittenAcl {
  readonly gatewayId: string;
  readonly port: number;
  readonly configFile: string;
  /** Its unit's drop-in ([Service] LimitCORE, MemoryMax, CPUWeight, CPUQuota). */
  readonly unitFile: string;
  /** What that drop-in sets: the namespace world gives its Redis the same, in a cgroup. */
  readonly budget: RedisBudget;
}

/** The systemd instance name of a gateway's Redis: redis-server@<this>.service. */
export function redisInstance(gatewayId: string): string {
  return `nonstop-${gatewayId}`;
}

/**
 * Writes `<out>/<gateway>/users.acl`, `redis.conf`, `unit.conf` and `<user>.password` (mode 0600; an
 * existing password file is kept) for each gateway. Files already holding what would be
 * written are left alone, so `written` lists only real changes.
 */
export function writeRedisServers(
  out: string,
  gateways: readonly GatewayRedisPlan[],
  limits: RedisServerLimits,
  options: RenderOptions = {},
): WrittenRedisServer[] {
  const ports = new Map<number, string>();
  for (const g of gateways) {
    const other = ports.get(g.port);
    if (other !== undefined)
      throw errors.CONFIG_INVALID(
        `gateways ${other} and ${g.gatewayId} would share the Redis on port ${g.port}: ` +
          'give each gateway its own gateways[].redis.port',
      );
    ports.set(g.port, g.gatewayId);
  }
  mkdirSync(out, { recursive: true, mode: 0o700 });
  return gateways.map((g) => {
    const dir = join(out, g.gatewayId);
    const acl = writeAcl(dir, { prefix: g.prefix, gatewayIds: [g.gatewayId], workerUser: g.workerUser });
    const installed = resolve(options.installDir ?? out, g.gatewayId);
    const instance = redisInstance(g.gatewayId);
    const text = renderRedisConfig({
      gatewayId: g.gatewayId,
      port: g.port,
      aclFile: join(installed, 'users.acl'),
      dir: installed,
      limits,
      ...(options.systemd === true ? { pidFile: `/run/redis-${instance}/redis-server.pid` } : {}),
    });
    const configFile = join(dir, 'redis.conf');
    const written = [...acl.written];
    if (writeIfChanged(configFile, text)) written.push(configFile);
    const unitFile = join(dir, 'unit.conf');
    if (writeIfChanged(unitFile, renderRedisUnit(g.gatewayId, limits))) written.push(unitFile);
    return {
      ...acl,
      written,
      gatewayId: g.gatewayId,
      port: g.port,
      configFile,
      unitFile,
      budget: redisBudget(limits),
    };
  });
}

/** The gateways' Redis servers a broker config describes; each must be on loopback. */
export function redisServerPlans(config: BrokerConfig): GatewayRedisPlan[] {
  return config.gateways.map((g) => {
    const redis = gatewayRedis(config, g.id);
    if (!['127.0.0.1', 'localhost', '::1'].includes(redis.host))
      throw errors.CONFIG_INVALID(
        `gateways[${g.id}].redis.host is ${redis.host}: a gateway's Redis runs on this broker's loopback`,
      );
    return {
      gatewayId: g.id,
      port: redis.port,
      prefix: redis.prefix,
      workerUser: redis.username ?? DEFAULT_WORKER_USER,
    };
  });
}

/** `nonstop redis-acl`'s whole job, for the world as for Ansible. */
export function renderBrokerRedis(
  config: BrokerConfig,
  out: string,
  options: RenderOptions = {},
): WrittenRedisServer[] {
  return writeRedisServers(out, redisServerPlans(config), config.redisServer, options);
}
