// ioredis connections built from a `redis` config section. The password is read from its
// file once, at start; a missing file fails there with its path.
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import type { RedisConfig } from '../config/schemas/gateway.js';
import { errors } from './errors.js';

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

export type RedisRole =
  /** Commands fail at once while disconnected: a request must never wait for Redis. */
  | 'fail-fast'
  /** Blocking reads and BullMQ workers: commands wait for the reconnect. */
  | 'blocking';

export function createRedis(config: RedisConfig, role: RedisRole, name: string): Redis {
  const base: RedisOptions = {
    host: config.host,
    port: config.port,
    ...redisAuth(config),
    connectionName: name,
    connectTimeout: 2000,
    lazyConnect: false,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2000),
  };
  const options: RedisOptions =
    role === 'fail-fast'
      ? { ...base, enableOfflineQueue: false, maxRetriesPerRequest: 1 }
      : { ...base, enableOfflineQueue: true, maxRetriesPerRequest: null };
  return new Redis(options);
}
