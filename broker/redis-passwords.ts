// Passwords of a running Redis changed live, for a rotation without a restart (a restart would
// empty it: brokers keep nothing on disk). Each user's passwords are set to exactly the hashes
// its rendered ACL file holds (`ACL SETUSER <user> resetpass #… [#…]`), which keeps every
// connected client connected; `ACL LOAD` would drop them all. Done as that Redis's admin user.
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { errors } from '../lib/errors.js';
import { ADMIN_USER } from './redis-acl.js';
import type { WrittenRedisServer } from './redis-config.js';

/** Connects as admin with its password (or, mid-rotation of the admin's own, its previous one). */
async function adminConnection(port: number, passwords: readonly string[]): Promise<Redis> {
  let last: unknown;
  for (const password of passwords) {
    const redis = new Redis({
      host: '127.0.0.1',
      port,
      username: ADMIN_USER,
      password,
      lazyConnect: true,
      enableReadyCheck: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2000,
      retryStrategy: () => null,
    });
    redis.on('error', () => {});
    try {
      await redis.connect();
      return redis;
    } catch (err) {
      redis.disconnect();
      last = err;
    }
  }
  throw errors.REDIS_ADMIN_FAILED(
    `cannot log in to the Redis on 127.0.0.1:${port} as ${ADMIN_USER}: ${(last as Error).message}`,
    undefined,
    { cause: last },
  );
}

const readPassword = (file: string) => {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
};

/** Sets every user's passwords of one running Redis to what its ACL file now holds. */
export async function applyAclPasswords(server: WrittenRedisServer): Promise<void> {
  const adminFile = server.passwordFiles[ADMIN_USER];
  if (adminFile === undefined) throw new Error(`${server.aclFile}: no ${ADMIN_USER} user`);
  const previousAdmin = adminFile.replace(/\.password$/, '.previous-password');
  const passwords = [readPassword(adminFile), readPassword(previousAdmin)].filter(
    (p): p is string => p !== undefined,
  );
  const redis = await adminConnection(server.port, passwords);
  try {
    for (const u of server.users)
      await redis.call('ACL', 'SETUSER', u.name, 'resetpass', ...u.hashes.map((h) => `#${h}`));
  } finally {
    redis.disconnect();
  }
}
