// Each gateway's own Redis, started from the redis.conf `nonstop redis-acl` renders, holds its
// bounds against that gateway's worst: a value over proto-max-bulk-len, output it never reads,
// one connection too many; a gateway's credentials open no other gateway's Redis; and nothing
// can make it write to disk. (A default redis-server, as every broker ran before, fails each.)
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { describe, test } from 'node:test';
import { ADMIN_USER, DEFAULT_WORKER_USER, gatewayUser } from '../../broker/redis-acl.js';
import { createRedis, REDIS_HEARTBEAT_MS, type Redis } from '../../lib/redis.js';
import { startCore } from '../../core/server.js';
import { silentLogger } from '../../lib/log.js';
import { brokerConfigDoc, startTestBroker } from '../helpers/broker.js';
import { testCoreConfig } from '../helpers/core.js';
import { startTestGateway, untilReady } from '../helpers/gateway.js';
import { useTestSchema } from '../helpers/pg.js';
import { usePki } from '../helpers/pki.js';
import { useRenderedRedis } from '../helpers/redis-server.js';
import { until } from '../helpers/until.js';

const MB = 1024 * 1024;
const LIMITS = {
  maxMemoryMb: 64,
  maxClients: 8,
  maxJobBytes: MB,
  idleTimeoutSeconds: 120,
  cpuWeight: 50,
  cpuQuotaPercent: null,
};

/** A RESP command, as a client puts it on the wire. */
function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** A raw connection (no client library between the test and Redis), closed by the caller. */
function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

async function clientNames(admin: Redis): Promise<string[]> {
  const list = (await admin.call('CLIENT', 'LIST')) as string;
  return [...list.matchAll(/ name=(\S*)/g)].map((m) => m[1]!);
}

describe("a gateway's own Redis, from the rendered redis.conf", () => {
  const ctx = useRenderedRedis(['gwa', 'gwb'], LIMITS);
  const key = (k: string) => `rendered:gw-gwa:${k}`;

  test('a value over proto-max-bulk-len is refused; one at the bound is stored', async () => {
    const worker = ctx.as('gwa', DEFAULT_WORKER_USER);
    assert.equal(await worker.set(key('at-bound'), 'x'.repeat(LIMITS.maxJobBytes)), 'OK');
    await assert.rejects(worker.set(key('over'), 'x'.repeat(LIMITS.maxJobBytes + 1)), /invalid bulk length/);
    const admin = ctx.as('gwa', ADMIN_USER);
    assert.equal(await admin.exists(key('over')), 0);
  });

  test('a client that never reads its answers is disconnected; one that reads is served', async () => {
    const admin = ctx.as('gwa', ADMIN_USER);
    await admin.hset(key('blob'), 'f', 'y'.repeat(LIMITS.maxJobBytes));
    const gwPassword = ctx.password('gwa', gatewayUser('gwa'));
    const port = ctx.servers.get('gwa')!.port;

    const reader = await rawSocket(port);
    let read = 0;
    reader.on('data', (d: Buffer) => (read += d.length));
    reader.write(resp('AUTH', gatewayUser('gwa'), gwPassword));
    for (let i = 0; i < 4; i++) reader.write(resp('HGET', key('blob'), 'f'));
    await until('the reader got its four answers', () => Promise.resolve(read >= 4 * LIMITS.maxJobBytes));
    reader.destroy();

    const hog = await rawSocket(port);
    hog.pause(); // reads nothing: the answers pile up in Redis
    hog.write(resp('AUTH', gatewayUser('gwa'), gwPassword));
    hog.write(resp('CLIENT', 'SETNAME', 'hog'));
    assert.ok((await clientNames(admin)).length > 0);
    for (let i = 0; i < 64; i++) hog.write(resp('HGET', key('blob'), 'f'));
    await until('Redis dropped the client that does not read', async () => {
      const names = await clientNames(admin);
      return !names.includes('hog');
    });
    const info = await admin.info('memory');
    const clientsMemory = Number(/^mem_clients_normal:(\d+)/m.exec(info)?.[1]);
    assert.ok(clientsMemory < 16 * MB, `client buffers hold ${clientsMemory} bytes after the drop`);
    hog.destroy();
  });

  test("a gateway's credentials, its worker's and its admin's open no other gateway's Redis", async () => {
    for (const user of [gatewayUser('gwa'), DEFAULT_WORKER_USER, ADMIN_USER]) {
      const own = ctx.as('gwa', user);
      assert.equal(await own.ping(), 'PONG', `${user} in gwa's Redis`);
      const elsewhere = ctx.as('gwb', user, ctx.password('gwa', user));
      await assert.rejects(elsewhere.ping(), /WRONGPASS|NOAUTH/, `${user} of gwa in gwb's Redis`);
    }
    assert.notEqual(ctx.password('gwa', DEFAULT_WORKER_USER), ctx.password('gwb', DEFAULT_WORKER_USER));
  });

  test('nothing is written to disk, and no user can make it write', async () => {
    const admin = ctx.as('gwa', ADMIN_USER);
    assert.deepEqual(await admin.config('GET', 'save'), ['save', '']);
    assert.deepEqual(await admin.config('GET', 'appendonly'), ['appendonly', 'no']);
    for (const args of [
      ['SAVE'],
      ['BGSAVE'],
      ['BGREWRITEAOF'],
      ['CONFIG', 'SET', 'appendonly', 'yes'],
      ['CONFIG', 'REWRITE'],
      ['ACL', 'SAVE'],
      ['REPLICAOF', '127.0.0.1', '1'],
      ['SHUTDOWN', 'SAVE'],
      ['DEBUG', 'RELOAD'],
    ]) {
      await assert.rejects(admin.call(args[0]!, ...args.slice(1)), /NOPERM|not allowed/, args.join(' '));
    }
    await admin.set(key('marker'), 'written');
    const dir = dirname(ctx.servers.get('gwa')!.configFile);
    assert.deepEqual(readdirSync(dir).sort(), [
      `${ADMIN_USER}.password`,
      `${DEFAULT_WORKER_USER}.password`,
      `${gatewayUser('gwa')}.password`,
      'redis.conf',
      // The unit drop-in, rendered with it (Redis never reads or writes it).
      'unit.conf',
      'users.acl',
    ]);
  });
});

describe("a gateway's own Redis caps its connections", () => {
  const ctx = useRenderedRedis(['gwc'], LIMITS, 'capped');

  test('the (maxclients + 1)th connection is refused', async () => {
    const clients = Array.from({ length: LIMITS.maxClients }, () => ctx.as('gwc', ADMIN_USER));
    for (const c of clients) assert.equal(await c.ping(), 'PONG');
    const extra = await rawSocket(ctx.servers.get('gwc')!.port);
    const answer = await new Promise<string>((resolve) => {
      extra.once('data', (d: Buffer) => resolve(d.toString()));
      extra.once('close', () => resolve('(closed without a word)'));
      setTimeout(() => resolve('(served: no refusal within 3 s)'), 3000).unref();
    });
    extra.destroy();
    assert.match(answer, /max number of clients reached/);
    // One leaves: the next one is served again.
    clients[0]!.disconnect();
    await until('a slot is free again', async () => (await clients[1]!.call('CLIENT', 'LIST')) !== '');
    const next = ctx.as('gwc', ADMIN_USER);
    await until('the next connection is served', () =>
      next.ping().then(
        (p) => p === 'PONG',
        () => false,
      ),
    );
  });
});

describe("each gateway's worker, replies and scripts on that gateway's own Redis", () => {
  const pki = usePki({ brokers: ['b1'] });
  const ctx = useRenderedRedis(['gwa', 'gwb'], { ...LIMITS, maxClients: 32 });

  test('the real broker and gateways serve through their own Redis, within its connection budget', async (t) => {
    const { url: dbUrl, schema } = await useTestSchema(t);
    const core = await startCore(testCoreConfig(pki(), { url: dbUrl, schema }), silentLogger());
    t.after(() => core.close());
    const own = (g: string) => ({ host: '127.0.0.1', port: ctx.servers.get(g)!.port });
    startTestBroker(
      t,
      brokerConfigDoc(pki(), {
        prefix: 'rendered',
        corePort: core.address.port,
        extra: {
          redis: { prefix: 'rendered', username: DEFAULT_WORKER_USER },
          gateways: ['gwa', 'gwb'].map((g) => ({
            id: g,
            redis: {
              port: own(g).port,
              passwordFile: ctx.servers.get(g)!.passwordFiles[DEFAULT_WORKER_USER],
            },
          })),
        },
      }),
    );
    // Two processes of gwa, one of gwb: each on its own gateway's Redis only.
    for (const g of ['gwa', 'gwa', 'gwb']) {
      const { url } = await startTestGateway(t, {
        prefix: 'rendered',
        id: g,
        overrides: {
          redis: {
            ...own(g),
            prefix: 'rendered',
            username: gatewayUser(g),
            passwordFile: ctx.servers.get(g)!.passwordFiles[gatewayUser(g)],
          },
        },
      });
      await untilReady(url);
      // Gateways call BullMQ's scripts by hash only: served means the broker loaded them there.
      const res = await fetch(`${url}/notes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ title: `via ${g}` }),
      });
      assert.equal(res.status, 201, await res.text());
    }
    const byUser = async (g: string) => {
      const list = (await ctx.as(g, ADMIN_USER).call('CLIENT', 'LIST')) as string;
      const counts: Record<string, number> = {};
      for (const m of list.matchAll(/ user=(\S+)/g)) counts[m[1]!] = (counts[m[1]!] ?? 0) + 1;
      return counts;
    };
    // Measured: 2 connections per gateway process (queue, replies), 3 for the broker (worker,
    // its blocking connection, replies), and the admin asking. maxclients 32 leaves room for 13
    // gateway processes with a couple of admin connections.
    assert.deepEqual(await byUser('gwa'), {
      [gatewayUser('gwa')]: 4,
      [DEFAULT_WORKER_USER]: 3,
      [ADMIN_USER]: 1,
    });
    assert.deepEqual(await byUser('gwb'), {
      [gatewayUser('gwb')]: 2,
      [DEFAULT_WORKER_USER]: 3,
      [ADMIN_USER]: 1,
    });
  });
});

describe("our connections stay inside a gateway Redis's idle timeout", () => {
  const ctx = useRenderedRedis(['gwd'], LIMITS, 'heartbeat');

  test('every connection createRedis makes sends PING each REDIS_HEARTBEAT_MS', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const s = ctx.servers.get('gwd')!;
    const redis = createRedis(
      {
        host: '127.0.0.1',
        port: s.port,
        prefix: 'heartbeat',
        username: gatewayUser('gwd'),
        passwordFile: s.passwordFiles[gatewayUser('gwd')]!,
      },
      'fail-fast',
      'heartbeat-probe',
      silentLogger(),
      { readyCheck: false },
    );
    t.after(() => redis.disconnect());
    await new Promise((resolve) => redis.once('ready', resolve));
    const admin = ctx.as('gwd', ADMIN_USER);
    const lastCommand = async () =>
      /name=heartbeat-probe .*? cmd=(\S+)/.exec((await admin.call('CLIENT', 'LIST')) as string)?.[1];
    assert.notEqual(await lastCommand(), 'ping');
    t.mock.timers.tick(REDIS_HEARTBEAT_MS);
    await until('the heartbeat PING arrived', async () => (await lastCommand()) === 'ping');
    assert.ok(REDIS_HEARTBEAT_MS * 2 <= LIMITS.idleTimeoutSeconds * 1000);
  });
});
