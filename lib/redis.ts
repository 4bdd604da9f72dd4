// ioredis connections built from a `redis` config section. The password is read from its
// file at start (a missing file fails there with its path) and again before each reconnect, so
// a rotated password (README, "Rotating credentials") is used from the next connection on
// without a restart; a file that became unreadable keeps the password read before.
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import type { RedisConfig } from '../config/schemas/gateway.js';
import { errors } from './errors.js';
import type { Logger } from './log.js';

export type { Redis };

export function redisAuth(config: RedisConfig): Pick<RedisOptions, 'username' | 'password'> {
  if (config.passwordFile === undefined)
    return config.username === undefined ? {} : { username: config.username };
  let password: string;
  try {
    password = readFileSync(config.passwordFile, 'utf8').trim();
  } catch (err) {
    throw errors.CONFIG_UNREADABLE(`redis.passwordFile: cannot read ${config.passwordFile}`, undefined, {
      cause: err,
    });
  }
  return config.username === undefined ? { password } : { username: config.username, password };
}

/** The password file's content now, into the options the next connection logs in with. */
function rereadPassword(redis: Redis, config: RedisConfig, name: string, log: Logger): void {
  if (config.passwordFile === undefined) return;
  let password: string;
  try {
    password = readFileSync(config.passwordFile, 'utf8').trim();
  } catch (err) {
    log.warn(
      { connection: name, err: (err as Error).message },
      'cannot read the Redis password file again; reconnecting with the password read before',
    );
    return;
  }
  if (password !== '' && password !== redis.options.password) {
    redis.options.password = password;
    log.info({ connection: name }, 'redis password file changed; reconnecting with the new password');
  }
}

export type RedisRole =
  /** Commands fail at once while disconnected: a request must never wait for Redis. */
  | 'fail-fast'
  /** Blocking reads and BullMQ workers: commands wait for the reconnect. */
  | 'blocking';

export interface RedisExtras {
  /**
   * ioredis's ready check sends INFO after connecting. Gateways turn it off: their ACL user
   * may not run INFO, which would tell them about every other gateway's traffic.
   */
  readonly readyCheck?: boolean;
}

/**
 * How often every connection sends PING. A gateway's Redis closes clients idle longer than its
 * `timeout` (broker/redis-config.ts); a queue connection with no traffic must not be one of them,
 * or the next request could meet it reconnecting.
 */
export const REDIS_HEARTBEAT_MS = 60_000;

/** The longest wait between two reconnect attempts. */
export const RECONNECT_MAX_DELAY_MS = 250;

/**
 * The wait before reconnect attempt `attempt` (1, 2, …): doubling from 50 ms up to
 * RECONNECT_MAX_DELAY_MS. Kept short: a gateway's Redis is a loopback port that a broker's tunnel
 * brings back at any moment, and every moment it waits after that is a moment of 503s (a refused
 * loopback connect costs next to nothing).
 */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(Math.max(attempt, 1) - 1, 6), RECONNECT_MAX_DELAY_MS);
}

/**
 * A connection that logs when it is lost and when it is back, once each, rather than on
 * every failed reconnect attempt.
 */
export function createRedis(
  config: RedisConfig,
  role: RedisRole,
  name: string,
  log: Logger,
  extras: RedisExtras = {},
): Redis {
  const base: RedisOptions = {
    enableReadyCheck: extras.readyCheck ?? true,
    host: config.host,
    port: config.port,
    ...redisAuth(config),
    connectionName: name,
    connectTimeout: 2000,
    lazyConnect: false,
    // Called before each reconnect: the moment to pick up a rotated password.
    retryStrategy: (attempt) => {
      rereadPassword(redis, config, name, log);
      return reconnectDelayMs(attempt);
    },
  };
  const options: RedisOptions =
    role === 'fail-fast'
      ? // A Redis that accepts connections but stops answering must not hold a request either.
        { ...base, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2000 }
      : { ...base, enableOfflineQueue: true, maxRetriesPerRequest: null };
  const redis = new Redis(options);
  let up = false;
  const heartbeat = setInterval(() => {
    if (redis.status === 'ready') redis.ping().catch(() => {});
  }, REDIS_HEARTBEAT_MS);
  heartbeat.unref();
  redis.once('end', () => clearInterval(heartbeat));
  redis.on('ready', () => {
    up = true;
    log.info({ connection: name }, 'redis connected');
  });
  redis.on('error', (err: Error) => {
    if (up) log.warn({ connection: name, err: err.message }, 'redis connection lost; reconnecting');
    else log.debug({ connection: name, err: err.message }, 'redis not reachable yet');
    up = false;
  });
  return redis;
}
