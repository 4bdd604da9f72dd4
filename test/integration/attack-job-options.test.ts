// A compromised gateway writes BullMQ's keys of its own queue by hand: job schedulers, repeat
// keys, delayed and prioritized entries, parents, deduplication keys, oversized names and data,
// envelopes whose fields no real gateway would send. The broker's worker takes each such job,
// refuses it without acting on anything the gateway wrote, removes it with its keys, and after
// every single attack still answers the next real request.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, test, type TestContext } from 'node:test';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import { startBroker } from '../../broker/broker.js';
import type { GatewayWorker } from '../../broker/gateway-worker.js';
import { gatewayUser } from '../../broker/redis-acl.js';
import { validateConfig } from '../../config/load.js';
import { loadRoutes } from '../../config/routes.js';
import type { BrokerConfig } from '../../config/schemas/broker.js';
import { queueName } from '../../lib/envelope.js';
import { callScriptsByHash, loadQueueScripts } from '../../lib/queue-scripts.js';
import { aclBrokerDoc } from '../helpers/broker.js';
import { startCountingCore } from '../helpers/core.js';
import { forgedNotesEnvelope } from '../helpers/envelope.js';
import { startTestGateway, untilReady } from '../helpers/gateway.js';
import { captureLogger, type CapturedLog } from '../helpers/log.js';
import { usePki } from '../helpers/pki.js';
import { useAclRedis } from '../helpers/redis-server.js';

const PREFIX = 'opts';
const GW = 'gwa';
const OTHER = 'gwb';
const base = (gw: string) => `${PREFIX}:${queueName(gw)}`;
/** What the broker is told of this gateway: its reply timeout (the gateway's is the default). */
const REPLY_TIMEOUT_MS = 10_000;

/** A well-formed envelope for POST /notes from the compromised gateway. */
const envelope = (over: Record<string, unknown> = {}) => forgedNotesEnvelope(GW, over);

/** The fields BullMQ's addStandardJob writes for a job, as a real gateway's Queue.add does. */
function jobFields(data: unknown, over: Record<string, string> = {}): Record<string, string> {
  const id = (data as { id?: unknown }).id;
  return {
    name: 'notes.create',
    data: JSON.stringify(data),
    opts: JSON.stringify({ jobId: id, removeOnComplete: true, removeOnFail: true, attempts: 1 }),
    delay: '0',
    priority: '0',
    timestamp: String(Date.now()),
    ...over,
  };
}

describe('forged job options, oversized values and envelope fields', () => {
  const pki = usePki({ brokers: ['b1'] });
  const ctx = useAclRedis({ prefix: PREFIX, gatewayIds: [GW, OTHER] });
  before(() => loadQueueScripts(ctx.admin));

  interface System {
    readonly worker: GatewayWorker;
    readonly log: CapturedLog;
    readonly attacker: ReturnType<typeof ctx.as>;
    /** Executions the core ran (every execute request it answered). */
    executions(): number;
    /** A real request through the real gateway; asserts that it is answered 201. */
    served(what: string): Promise<void>;
    /** Waits until the worker has finished `n` jobs in all. */
    taken(n: number, what: string): Promise<void>;
  }

  async function system(t: TestContext, gatewayOverrides: Record<string, unknown> = {}): Promise<System> {
    // Each test starts from an empty queue, whatever an earlier one left.
    const stale = await ctx.admin.keys(`${base(GW)}:*`);
    if (stale.length > 0) await ctx.admin.del(...stale);
    const { core, executions } = await startCountingCore(t, pki());
    const doc = aclBrokerDoc(pki(), ctx, {
      prefix: PREFIX,
      corePort: core.address.port,
      gateways: [GW, OTHER],
      extra: {
        gateways: [
          { id: GW, replyTimeoutMs: REPLY_TIMEOUT_MS },
          { id: OTHER, replyTimeoutMs: REPLY_TIMEOUT_MS },
        ],
      },
    });
    const config: BrokerConfig = validateConfig('broker', 'test-broker.json', doc);
    const log = captureLogger('debug');
    const broker = startBroker(config, loadRoutes(config.routes), log.logger);
    t.after(() => broker.close());
    const { url } = await startTestGateway(t, {
      prefix: PREFIX,
      id: GW,
      overrides: {
        redis: {
          host: '127.0.0.1',
          port: ctx.redis.port,
          prefix: PREFIX,
          username: gatewayUser(GW),
          passwordFile: ctx.acl.passwordFiles[gatewayUser(GW)],
        },
        replyTimeoutMs: REPLY_TIMEOUT_MS,
        ...gatewayOverrides,
      },
    });
    await untilReady(url);
    const worker = broker.workers.get(GW)!;
    const attacker = ctx.as(gatewayUser(GW));
    callScriptsByHash(attacker);
    const total = () => Object.values(worker.counts).reduce((a, b) => a + b, 0);
    return {
      worker,
      log,
      attacker,
      executions,
      async served(what) {
        const res = await fetch(`${url}/notes`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ title: `after ${what}` }),
        });
        assert.equal(res.status, 201, `a real request after ${what}: ${await res.text()}`);
      },
      async taken(n, what) {
        for (let i = 0; total() < n; i++) {
          assert.ok(i < 200, `${what}: the worker took ${total()} jobs, expected ${n}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      },
    };
  }

  /** Every key of the gateway's queue, without the housekeeping a worker keeps. */
  async function leftover(gw: string): Promise<string[]> {
    const keys = await ctx.admin.keys(`${base(gw)}:*`);
    const housekeeping = new Set(['meta', 'stalled-check', 'events', 'marker', 'id', 'stalled']);
    return keys
      .map((k) => k.slice(base(gw).length + 1))
      .filter((k) => !housekeeping.has(k) && !k.startsWith('reply:'));
  }

  /** Waits (a little) for the worker to finish removing jobs, then returns what is left. */
  async function settled(gw: string, expected: readonly string[]): Promise<string[]> {
    let left: string[] = [];
    for (let i = 0; i < 50; i++) {
      left = (await leftover(gw)).sort();
      if (JSON.stringify(left) === JSON.stringify([...expected].sort())) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return left;
  }

  async function push(client: System['attacker'], id: string, fields: Record<string, string>): Promise<void> {
    await client.hset(`${base(GW)}:${id}`, fields);
    await client.lpush(`${base(GW)}:wait`, id);
    await client.zadd(`${base(GW)}:marker`, 0, '0');
  }

  test('a forged job scheduler does not make the broker add the next job', async (t) => {
    const sys = await system(t);
    // A scheduler that repeats every 50 ms, and its current job, as BullMQ itself lays them out.
    const prev = Date.now() - 100;
    const id = `repeat:gen:${prev}`;
    await sys.attacker.zadd(`${base(GW)}:repeat`, prev, 'gen');
    await sys.attacker.hset(`${base(GW)}:repeat:gen`, {
      name: 'notes.create',
      data: JSON.stringify(envelope()),
      every: '50',
      ic: '1',
    });
    const data = envelope();
    await push(
      sys.attacker,
      id,
      jobFields(data, { rjk: 'gen', opts: JSON.stringify({ repeat: { every: 50 }, jobId: id }) }),
    );
    await sys.taken(1, 'the forged scheduler job');
    // Long enough for twenty iterations of the schedule.
    await new Promise((r) => setTimeout(r, 1000));
    await sys.served('a forged scheduler');
    assert.equal(sys.worker.counts.tampered, 1, 'the forged job was refused, and no job followed it');
    assert.equal(sys.executions(), 1, 'the core ran only the real request');
    assert.deepEqual(await settled(GW, []), [], 'the job, its scheduler and the repeat key are gone');
  });

  test('delayed, prioritized, parent and deduplication jobs are refused and removed, acting on nothing', async (t) => {
    const sys = await system(t);
    const parentKey = `${base(GW)}:parent`;
    // A parent waiting for its child, and the data of a "next" job under a deduplication id.
    await sys.attacker.hset(parentKey, jobFields(envelope()));
    await sys.attacker.call('SADD', `${parentKey}:dependencies`, `${base(GW)}:child`);
    await sys.attacker.hset(`${base(GW)}:dn:d1`, {
      name: 'notes.create',
      data: JSON.stringify(envelope()),
      opts: '{}',
      jid: 'born-of-dedup',
    });
    const now = Date.now();
    const attacks: [string, () => Promise<void>][] = [
      [
        'a delayed job',
        async () => {
          const data = envelope();
          await sys.attacker.hset(
            `${base(GW)}:${String(data.id)}`,
            jobFields(data, { delay: '20', opts: JSON.stringify({ delay: 20, jobId: data.id }) }),
          );
          await sys.attacker.zadd(`${base(GW)}:delayed`, now * 0x1000, String(data.id));
          await sys.attacker.zadd(`${base(GW)}:marker`, 0, '0');
        },
      ],
      [
        'a prioritized job',
        async () => {
          const data = envelope();
          await sys.attacker.hset(
            `${base(GW)}:${String(data.id)}`,
            jobFields(data, { priority: '5', opts: JSON.stringify({ priority: 5, jobId: data.id }) }),
          );
          await sys.attacker.zadd(`${base(GW)}:prioritized`, 5 * 0x100000000, String(data.id));
          await sys.attacker.zadd(`${base(GW)}:marker`, 0, '0');
        },
      ],
      [
        'a child of a parent',
        async () => {
          const data = envelope();
          await push(
            sys.attacker,
            'child',
            jobFields(data, {
              parentKey,
              parent: JSON.stringify({ id: 'parent', queueKey: base(GW) }),
              opts: JSON.stringify({ parent: { id: 'parent', queue: base(GW) } }),
            }),
          );
        },
      ],
      [
        'a job with a deduplication id and a next job',
        async () => {
          const data = envelope();
          await push(
            sys.attacker,
            String(data.id),
            jobFields(data, {
              deid: 'd1',
              opts: JSON.stringify({ de: { id: 'd1', keepLastIfActive: true }, jobId: data.id }),
            }),
          );
        },
      ],
      [
        'a job that asks for retries with backoff',
        async () => {
          const data = envelope();
          await push(
            sys.attacker,
            String(data.id),
            jobFields(data, {
              opts: JSON.stringify({ attempts: 50, backoff: { type: 'fixed', delay: 10 }, jobId: data.id }),
            }),
          );
        },
      ],
      [
        'a job that keeps itself after completion',
        async () => {
          const data = envelope();
          await push(
            sys.attacker,
            String(data.id),
            jobFields(data, { opts: JSON.stringify({ removeOnComplete: false, jobId: data.id }) }),
          );
        },
      ],
    ];
    let taken = 0;
    for (const [what, attack] of attacks) {
      await attack();
      await sys.taken(++taken, what);
      await sys.served(what);
      taken += 1;
    }
    await sys.taken(taken, 'every job');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sys.worker.counts.tampered, attacks.length, 'every forged job was refused, none followed');
    assert.equal(sys.executions(), attacks.length, 'the core ran only the real requests');
    // The parent is exactly as the attacker left it: the child's completion did not release it.
    assert.equal(await ctx.admin.sismember(`${parentKey}:dependencies`, `${base(GW)}:child`), 1);
    const pointedAt = ['dn:d1', 'parent', 'parent:dependencies'];
    assert.deepEqual(
      await settled(GW, pointedAt),
      pointedAt,
      'each forged job is gone with its keys; only what it pointed at is left, untouched',
    );
  });

  test('oversized names and data are refused without being logged or parsed whole', async (t) => {
    const sys = await system(t);
    const attacks: [string, Record<string, string>][] = [
      ['a 50 MB job name', { name: 'n'.repeat(50 << 20) }],
      ['16 MB of data', { data: JSON.stringify({ ...envelope(), body: { title: 'b'.repeat(16 << 20) } }) }],
      ['a 1 MB field name', { ['f'.repeat(1 << 20)]: '1' }],
      ['a thousand extra fields', Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`x${i}`, '1']))],
    ];
    let taken = 0;
    for (const [what, over] of attacks) {
      const data = envelope();
      await push(sys.attacker, String(data.id), jobFields(data, over));
      // How long this process (broker, gateway and core in one) stalls while the broker takes
      // the job: a figure for the report, not a bound (the machine is shared).
      const stall = monitorEventLoopDelay({ resolution: 10 });
      stall.enable();
      await sys.taken(++taken, what);
      stall.disable();
      t.diagnostic(`${what}: event loop stalled at most ${Math.round(stall.max / 1e6)} ms while taken`);
      await sys.served(what);
      taken += 1;
    }
    await sys.taken(taken, 'every job');
    // A job whose lock ran out while its 50 MB crossed is taken once more, small by then (the
    // screen deleted what it refused), and refused again: at most twice each.
    const { tampered } = sys.worker.counts;
    assert.ok(tampered >= attacks.length && tampered <= 2 * attacks.length, `${tampered} refusals`);
    assert.equal(sys.executions(), attacks.length, 'the core ran only the real requests');
    const longest = Math.max(
      ...sys.log
        .text()
        .split('\n')
        .map((l) => l.length),
    );
    assert.ok(longest < 4096, `the longest log line is ${longest} characters`);
    assert.deepEqual(await settled(GW, []), []);
  });

  test('envelope fields out of bounds are refused before the core', async (t) => {
    const sys = await system(t);
    const now = Date.now();
    const attacks: [string, Record<string, unknown>][] = [
      ['a deadline 20 days away', { receivedAt: now, deadline: now + 20 * 86_400_000 }],
      ['a deadline beyond the reply timeout', { receivedAt: now, deadline: now + REPLY_TIMEOUT_MS + 60_000 }],
      ['received in the future', { receivedAt: now + 3_600_000, deadline: now + 3_600_000 + 1000 }],
      ['received before the epoch of its deadline', { receivedAt: 0, deadline: now + 5000 }],
      ['a deadline before it was received', { receivedAt: now + 1000, deadline: now + 500 }],
      ['a client address that is no IP', { clientIp: 'not-an-ip' }],
      ['a client address with a port', { clientIp: '198.18.0.66:443' }],
      ['a header the gateway does not forward', { headers: { 'x-forwarded-for': '10.0.0.1' } }],
      ['an authorization header', { headers: { authorization: 'Bearer forged' } }],
    ];
    const queue = new Queue(queueName(GW), {
      connection: sys.attacker,
      prefix: PREFIX,
      skipVersionCheck: true,
      skipWaitingForReady: true,
    });
    t.after(() => queue.close());
    let taken = 0;
    for (const [what, over] of attacks) {
      const data = envelope({ ...over, id: randomUUID() });
      await queue.add('notes.create', data, { jobId: String(data.id), removeOnComplete: true, attempts: 1 });
      await sys.taken(++taken, what);
      await sys.served(what);
      taken += 1;
    }
    await sys.taken(taken, 'every job');
    assert.equal(sys.worker.counts.tampered, attacks.length, 'each was refused as tampered');
    assert.equal(sys.executions(), attacks.length, 'the core ran only the real requests');
    // A legitimate envelope with a forwarded header and an IPv6 client passes.
    const fine = envelope({ id: randomUUID(), headers: { 'user-agent': 'ua' }, clientIp: '2001:db8::66' });
    await queue.add('notes.create', fine, { jobId: String(fine.id), removeOnComplete: true, attempts: 1 });
    await sys.taken(taken + 1, 'a fine forged envelope');
    assert.equal(sys.executions(), attacks.length + 1);
  });
});
