// A private redis-server for one test file (ACL tests must never touch the shared Redis):
// its own temp folder, a free loopback port, killed by pid afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import {
  ADMIN_USER,
  DEFAULT_WORKER_USER,
  writeAcl,
  type AclPlan,
  type WrittenAcl,
} from '../../broker/redis-acl.js';
import { writeRedisServers, type WrittenRedisServer } from '../../broker/redis-config.js';
import type { RedisServerLimits } from '../../config/schemas/broker.js';
import { freePort } from '../../lib/free-port.js';

export interface PrivateRedis {
  readonly port: number;
  readonly dir: string;
  /** A connection as `user` (for the admin user, a client that can read ACL LOG). */
  connect(user?: string, password?: string): Redis;
  stop(): Promise<void>;
}

export { freePort };

export async function startPrivateRedis(options: { aclFile?: string } = {}): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'nonstop-test-redis-'));
  const port = await freePort();
  const conf = [
    `port ${port}`,
    'bind 127.0.0.1',
    `dir ${dir}`,
    'save ""',
    'appendonly no',
    'acllog-max-len 1024',
    // So that the ACL, not this switch, is what refuses DEBUG in tests.
    'enable-debug-command yes',
    ...(options.aclFile === undefined ? [] : [`aclfile ${options.aclFile}`]),
  ];
  writeFileSync(join(dir, 'redis.conf'), `${conf.join('\n')}\n`);
  return startRedisFromFile(
    join(dir, 'redis.conf'),
    port,
    () => rmSync(dir, { recursive: true, force: true }),
    dir,
  );
}

/**
 * `redis-server FILE` (a rendered redis.conf, as the world and the hosts start it) on `port`,
 * the port that file names; killed by pid in `stop()`, which then runs `cleanup`.
 */
export async function startRedisFromFile(
  file: string,
  port: number,
  cleanup: () => void = () => {},
  dir = '',
): Promise<PrivateRedis> {
  const child: ChildProcess = spawn('redis-server', [file], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    cleanup();
  };
  // Wait until it answers (an error such as NOAUTH is an answer: it is up).
  const end = Date.now() + 5000;
  while (!(await answers(port))) {
    if (Date.now() > end || child.exitCode !== null) {
      await stop();
      throw new Error(`redis-server on port ${port} (${file}) did not start`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    dir,
    connect: (username, password) => {
      const client = new Redis({
        host: '127.0.0.1',
        port,
        username,
        password,
        maxRetriesPerRequest: 1,
        enableReadyCheck: false,
      });
      client.on('error', () => {}); // Refusals are what ACL tests look for; commands reject.
      return client;
    },
    stop,
  };
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.setTimeout(500, () => socket.destroy());
    socket.once('data', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}

// A redis-server that a test can stop, freeze (SIGSTOP) and restart on the same port, for
// faults that must not touch the shared one.
export interface OwnRedis {
  readonly port: number;
  readonly process: ChildProcess;
  /** Stops it for good (SIGKILL) and waits for the exit. */
  kill(): Promise<void>;
  /** Starts a new redis-server on the same port. */
  restart(): Promise<void>;
}

async function launch(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', '/tmp'],
    { stdio: 'ignore' },
  );
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
  probe.on('error', () => {});
  for (let i = 0; i < 100; i++) {
    if (
      await probe.connect().then(
        () => true,
        () => false,
      )
    ) {
      probe.disconnect();
      return child;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server on port ${port} did not start`);
}

export async function startOwnRedis(t: TestContext): Promise<OwnRedis> {
  const port = await freePort();
  let child = await launch(port);
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  t.after(kill);
  return {
    port,
    get process() {
      return child;
    },
    kill,
    async restart() {
      await kill();
      child = await launch(port);
    },
  };
}

/** A private redis-server running the ACL `writeAcl` renders for a plan (see useAclRedis). */
export interface AclRedis {
  readonly acl: WrittenAcl;
  readonly redis: PrivateRedis;
  /** A connection as the ACL's admin user. */
  readonly admin: Redis;
  readonly password: (user: string) => string;
  /** A new connection as `user`, with its password; closed after the tests. */
  readonly as: (user: string) => Redis;
  /** A new connection that does not authenticate; closed after the tests. */
  readonly anonymous: () => Redis;
}

/**
 * Inside a describe: renders the plan's ACL, starts a private redis-server with it before the
 * tests and stops it (and every connection made through `as`) after them.
 */
export function useAclRedis(plan: AclPlan): AclRedis {
  let dir = '';
  const clients: Redis[] = [];
  const ctx = {
    acl: undefined as unknown as WrittenAcl,
    redis: undefined as unknown as PrivateRedis,
    admin: undefined as unknown as Redis,
    password: (user: string) => readFileSync(ctx.acl.passwordFiles[user]!, 'utf8').trim(),
    as: (user: string) => {
      const client = ctx.redis.connect(user, ctx.password(user));
      clients.push(client);
      return client;
    },
    anonymous: () => {
      const client = ctx.redis.connect();
      clients.push(client);
      return client;
    },
  };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nonstop-acl-'));
    ctx.acl = writeAcl(dir, plan);
    ctx.redis = await startPrivateRedis({ aclFile: ctx.acl.aclFile });
    ctx.admin = ctx.as(ADMIN_USER);
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await ctx.redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return ctx;
}

/** Gateways' own Redis servers, from the redis.conf and ACL `nonstop redis-acl` renders. */
export interface RenderedRedis {
  readonly servers: ReadonlyMap<string, WrittenRedisServer & { readonly redis: PrivateRedis }>;
  readonly password: (gatewayId: string, user: string) => string;
  /** A new connection to `gatewayId`'s Redis as `user` (with that Redis's password for it). */
  readonly as: (gatewayId: string, user: string, password?: string) => Redis;
}

/** Inside a describe: renders and starts a Redis per gateway before the tests, stops them after. */
export function useRenderedRedis(
  gatewayIds: readonly string[],
  limits: RedisServerLimits,
  prefix = 'rendered',
): RenderedRedis {
  let dir = '';
  const clients: Redis[] = [];
  const servers = new Map<string, WrittenRedisServer & { redis: PrivateRedis }>();
  const ctx: RenderedRedis = {
    servers,
    password: (g, user) => readFileSync(servers.get(g)!.passwordFiles[user]!, 'utf8').trim(),
    as: (g, user, password) => {
      const client = servers.get(g)!.redis.connect(user, password ?? ctx.password(g, user));
      clients.push(client);
      return client;
    },
  };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nonstop-redis-'));
    const plans = [];
    for (const g of gatewayIds)
      plans.push({ gatewayId: g, port: await freePort(), prefix, workerUser: DEFAULT_WORKER_USER });
    for (const w of writeRedisServers(dir, plans, limits)) {
      servers.set(w.gatewayId, { ...w, redis: await startRedisFromFile(w.configFile, w.port) });
    }
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    for (const s of servers.values()) await s.redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return ctx;
}
