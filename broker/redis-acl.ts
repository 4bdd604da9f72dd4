// Redis ACL users for the broker side's Redis, rendered in `aclfile` format: one user per
// gateway confined to its own queue's keys, one worker user for brokers, an admin user, and
// the default user switched off. Each gateway's own Redis (broker/redis-config.ts) gets an ACL
// of one gateway, so its worker and admin passwords open that gateway's Redis only. Passwords are random, kept in 0600 files, and only their
// SHA-256 appears in the ACL file.
//
// The command lists were derived from MONITOR and ACL LOG against a real redis-server while
// the real gateway and worker code ran, plus every command BullMQ's Lua scripts can call
// (`redis.call` inside a script is checked against the caller's ACL). The integration test
// test/integration/redis-acl.test.ts runs the real code as these users and fails on any
// NOPERM, so a BullMQ upgrade that needs more shows up there.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_WORKER_USER, gatewayUser } from '../config/redis-users.js';
import { challengeInboxKey } from '../lib/acme-relay.js';
import { queueName } from '../lib/envelope.js';

/**
 * What the gateway's connections send themselves: the connection handshake, Queue.add's
 * script by hash only (EVALSHA; no EVAL, so no Lua of its own: lib/queue-scripts.ts), the
 * queue's meta hash (HSET at Queue start), the reply stream's read and trim (XREAD, XTRIM) and the idle heartbeat
 * (PING, lib/redis.ts). The gateway connects without INFO (no ready check, no BullMQ version
 * check): INFO would tell it about every other gateway's traffic.
 */
export const GATEWAY_CLIENT_COMMANDS = [
  'hello',
  'client|setname',
  'evalsha',
  'hset',
  'xread',
  'xtrim',
  'ping',
  // Its clock against the queue's (lib/queue-clock.ts): receivedAt and deadline are in Redis's.
  'time',
  // Its outbox of ACME challenge answers (SET … PXAT, DEL: both in the script list) and the
  // read of its inbox (lib/acme-relay.ts).
  'hgetall',
];

/** What BullMQ's addStandardJob script calls (every branch, not just those a test takes). */
export const GATEWAY_SCRIPT_COMMANDS = [
  'del',
  'exists',
  'get',
  'hget',
  'hmget',
  'hmset',
  'hset',
  'incr',
  'llen',
  'lpos',
  'lpush',
  'lrange',
  'persist',
  'pttl',
  'rpush',
  'sadd',
  'scard',
  'set',
  'xadd',
  'zadd',
  'zrange',
  'zrem',
  'zrevrangebyscore',
  'zscore',
];

/**
 * What a broker's connections send themselves: the handshake and BullMQ's version check
 * (INFO), the worker's blocking marker read (BZPOPMIN), its scripts, loading every BullMQ
 * script for the gateways (SCRIPT LOAD), the reply delivery (MULTI XADD PEXPIRE EXEC) and the
 * idle heartbeat (PING).
 */
export const WORKER_CLIENT_COMMANDS = [
  'hello',
  'ping',
  'time',
  'client|setname',
  'info',
  'evalsha',
  'eval',
  'script|load',
  'bzpopmin',
  'multi',
  'exec',
  'xadd',
  'pexpire',
  // The ACME relay (broker/acme-relay.ts): a bounded read of each gateway's outbox, and its
  // inbox written (MULTI HSET PEXPIREAT EXEC, HDEL).
  'getrange',
  'hset',
  'hdel',
  'pexpireat',
];

/** Every command any BullMQ script calls: stalled-job recovery, retries and so on included. */
export const WORKER_SCRIPT_COMMANDS = [
  'del',
  'exists',
  'get',
  'hdel',
  'hexists',
  'hget',
  'hgetall',
  'hincrby',
  'hlen',
  'hmget',
  'hmset',
  'hscan',
  'hset',
  'incr',
  'incrby',
  'lindex',
  'llen',
  'lpop',
  'lpos',
  'lpush',
  'lrange',
  'lrem',
  'lset',
  'ltrim',
  'persist',
  'pexpire',
  'pexpireat',
  'pttl',
  'rename',
  'rpop',
  'rpoplpush',
  'rpush',
  'sadd',
  'scard',
  'set',
  'sismember',
  'smembers',
  'srem',
  'sscan',
  'time',
  'type',
  'unlink',
  'xadd',
  'xdel',
  'xlen',
  'xrange',
  'xread',
  'xtrim',
  'zadd',
  'zcard',
  'zcount',
  'zlexcount',
  'zpopmin',
  'zrange',
  'zrangebylex',
  'zrangebyscore',
  'zrem',
  'zremrangebyrank',
  'zremrangebyscore',
  'zrevrange',
  'zrevrangebyscore',
  'zscore',
];

/**
 * What the admin user may not do: anything that writes to disk (brokers store nothing), turns
 * this Redis into a replica (which writes the master's data to disk) or changes its config.
 */
export const ADMIN_DENIED_COMMANDS = [
  'acl|save',
  'bgrewriteaof',
  'bgsave',
  'config|rewrite',
  'config|set',
  'debug',
  'failover',
  'module',
  'psync',
  'replicaof',
  'save',
  'shutdown',
  'slaveof',
  'sync',
];

export const ADMIN_USER = 'nonstop-admin';
// Named in config/ (a gateway's config logs in as its user): one definition for both.
export { DEFAULT_WORKER_USER, gatewayUser };

/** The key pattern that holds every key of one gateway's queue, its reply streams included. */
export function gatewayKeyPattern(prefix: string, gatewayId: string): string {
  return `${prefix}:${queueName(gatewayId)}:*`;
}

export interface AclUser {
  readonly name: string;
  readonly password: string;
  /**
   * During a rotation (README, "Rotating credentials"): the password it had, which opens too
   * until the clients switched, from `<user>.previous-password`.
   */
  readonly previousPassword?: string;
  readonly rules: string;
}

/** What Redis keeps of a user's passwords: their SHA-256, current first. */
export function passwordHashes(u: Pick<AclUser, 'password' | 'previousPassword'>): string[] {
  const hash = (p: string) => createHash('sha256').update(p).digest('hex');
  return [u.password, ...(u.previousPassword === undefined ? [] : [u.previousPassword])].map(hash);
}

export interface AclPlan {
  readonly prefix: string;
  readonly gatewayIds: readonly string[];
  readonly workerUser?: string;
}

function commands(list: readonly string[]): string {
  return [...new Set(list)]
    .sort()
    .map((c) => `+${c}`)
    .join(' ');
}

/**
 * The rules (after the passwords) of each user; passwords come from `passwordFor`, and a
 * previous one, during a rotation, from `previousFor`.
 */
export function aclUsers(
  plan: AclPlan,
  passwordFor: (user: string) => string,
  previousFor: (user: string) => string | undefined = () => undefined,
): AclUser[] {
  const users: AclUser[] = [];
  const withPrevious = (u: AclUser): AclUser => {
    const previous = previousFor(u.name);
    return previous === undefined || previous === u.password ? u : { ...u, previousPassword: previous };
  };
  const gatewayCommands = commands([...GATEWAY_CLIENT_COMMANDS, ...GATEWAY_SCRIPT_COMMANDS]);
  for (const id of plan.gatewayIds) {
    const name = gatewayUser(id);
    // Its ACME inbox, which brokers fill with other gateways' answers: read, never written (a
    // gateway cannot plant answers that look relayed, nor break the broker's writes).
    users.push({
      name,
      password: passwordFor(name),
      rules: `resetkeys ~${gatewayKeyPattern(plan.prefix, id)} %R~${challengeInboxKey(plan.prefix, id)} resetchannels -@all ${gatewayCommands}`,
    });
  }
  const worker = plan.workerUser ?? DEFAULT_WORKER_USER;
  const workerKeys = plan.gatewayIds
    .map((id) => `~${gatewayKeyPattern(plan.prefix, id)} ~${challengeInboxKey(plan.prefix, id)}`)
    .join(' ');
  users.push({
    name: worker,
    password: passwordFor(worker),
    rules: `resetkeys ${workerKeys} resetchannels -@all ${commands([
      ...WORKER_CLIENT_COMMANDS,
      ...WORKER_SCRIPT_COMMANDS,
    ])}`,
  });
  users.push({
    name: ADMIN_USER,
    password: passwordFor(ADMIN_USER),
    rules: `allkeys allchannels +@all ${ADMIN_DENIED_COMMANDS.map((c) => `-${c}`).join(' ')}`,
  });
  return users.map(withPrevious);
}

/**
 * `aclfile` text (which allows no comments): the default user off (no password, no
 * commands), then every user.
 */
export function renderAclFile(users: readonly AclUser[]): string {
  const lines = ['user default off resetpass nocommands resetkeys resetchannels'];
  for (const u of users) {
    const hashes = passwordHashes(u).map((h) => `#${h}`);
    lines.push(`user ${u.name} on ${hashes.join(' ')} ${u.rules}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The ACL text with its password hashes left out: equal for two ACLs that differ in passwords only. */
function withoutPasswords(text: string): string {
  return text.replace(/ #[0-9a-f]{64}/g, '');
}

export function newPassword(): string {
  return randomBytes(32).toString('base64url');
}

export interface WrittenAcl {
  readonly aclFile: string;
  readonly passwordFiles: Readonly<Record<string, string>>;
  /** Files created or changed this time (password files already there are kept). */
  readonly written: readonly string[];
  /**
   * The ACL file was there and changed in its passwords only: a running Redis takes that change
   * live (`nonstop redis-acl --apply-passwords`, ACL SETUSER), with no restart and no client dropped.
   */
  readonly passwordsOnly: boolean;
  /** Each user's password hashes as the ACL file holds them, for applying them live. */
  readonly users: readonly { readonly name: string; readonly hashes: readonly string[] }[];
}

/**
 * Writes `<dir>/users.acl` and `<dir>/<user>.password` (mode 0600). An existing password
 * file is kept, so rendering again after adding a gateway changes no one else's password.
 * A `<dir>/<user>.previous-password` (put there for a rotation) is that user's second password.
 */
export function writeAcl(dir: string, plan: AclPlan): WrittenAcl {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const written: string[] = [];
  const passwordFiles: Record<string, string> = {};
  const users = aclUsers(
    plan,
    (user) => {
      const file = join(dir, `${user}.password`);
      passwordFiles[user] = file;
      if (existsSync(file)) return readFileSync(file, 'utf8').trim();
      const password = newPassword();
      writeFileSync(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
      written.push(file);
      return password;
    },
    (user) => {
      const file = join(dir, `${user}.previous-password`);
      return existsSync(file) ? readFileSync(file, 'utf8').trim() || undefined : undefined;
    },
  );
  const aclFile = join(dir, 'users.acl');
  const text = renderAclFile(users);
  const before = existsSync(aclFile) ? readFileSync(aclFile, 'utf8') : undefined;
  const changed = writeIfChanged(aclFile, text);
  if (changed) written.push(aclFile);
  const passwordsOnly =
    changed && before !== undefined && withoutPasswords(before) === withoutPasswords(text);
  return {
    aclFile,
    passwordFiles,
    written,
    passwordsOnly,
    users: users.map((u) => ({ name: u.name, hashes: passwordHashes(u) })),
  };
}

/** Writes `text` (a new file: mode 0600) unless the file already holds it; true if it wrote. */
export function writeIfChanged(file: string, text: string): boolean {
  if (existsSync(file) && readFileSync(file, 'utf8') === text) return false;
  writeFileSync(file, text, { mode: 0o600 });
  return true;
}
