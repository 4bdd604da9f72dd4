// A compromised gateway: it holds its own Redis user (the ACL `broker/redis-ctx.acl.ts` renders)
// and pushes every kind of forged job straight into its queue, through BullMQ and through raw
// Redis commands on BullMQ's keys. None may reach the core, the worker must keep serving, the
// broker process must not be polluted, and the gateway's user must not reach another
// gateway's keys or administer Redis.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { ADMIN_USER, gatewayUser } from '../../broker/redis-acl.js';
import type { Broker } from '../../broker/broker.js';
import type { RunningCore } from '../../core/server.js';
import { keyedId } from '../helpers/idempotency.js';
import { queueName, replyKey } from '../../lib/envelope.js';
import { callScriptsByHash, loadQueueScripts } from '../../lib/queue-scripts.js';
import { aclBrokerDoc, startTestBroker } from '../helpers/broker.js';
import { startCountingCore } from '../helpers/core.js';
import { startTestGateway, untilReady } from '../helpers/gateway.js';
import { forgedNotesEnvelope } from '../helpers/envelope.js';
import { sql } from '../helpers/pg.js';
import { usePki } from '../helpers/pki.js';
import { useAclRedis } from '../helpers/redis-server.js';
import { addReply, replyTexts, takeReply } from '../helpers/replies.js';

const PREFIX = 'attack';
const GW = 'gwa';
const OTHER = 'gwb';
const base = (gw: string) => `${PREFIX}:${queueName(gw)}`;

/** What a real gateway would queue for POST /notes, with `over` laid on top. */
const envelope = (over: Record<string, unknown> = {}) => forgedNotesEnvelope(GW, over);

/** JSON text parsed back, so that `__proto__` becomes an own key (as it would off the wire). */
const own = (json: string): unknown => JSON.parse(json) as unknown;

function nested(depth: number, leaf: unknown): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

/** A pollution payload at `depth` levels of nesting, as JSON text. */
function pollution(depth: number): string {
  let inner =
    '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"}}';
  for (let i = 0; i < depth; i++) inner = `{"a":${inner},"__proto__":{"polluted":"yes"}}`;
  return inner;
}

/** Forged job data that passes through BullMQ's `Queue.add` (so: JSON-serialisable). */
function forgedThroughBullmq(): { name: string; data: unknown; jobId?: string }[] {
  const polluted = (field: string, depth: number) =>
    own(JSON.stringify(envelope()).replace(`"${field}":`, `"${field}":${pollution(depth)},"x${field}":`));
  const e = envelope();
  return [
    { name: 'a JSON string', data: 'just a string' },
    { name: 'a number', data: 42 },
    { name: 'null', data: null },
    { name: 'an array', data: [envelope()] },
    { name: 'an empty object', data: {} },
    { name: 'wrong shape', data: { v: 1, id: 'x' } },
    { name: 'wrong version', data: envelope({ v: 2 }) },
    { name: 'id not a UUID', data: envelope({ id: 'not-a-uuid' }) },
    { name: 'unknown envelope field', data: envelope({ admin: true }) },
    { name: 'missing body', data: (({ body: _b, ...rest }) => rest)(envelope()) },
    { name: 'method not allowed', data: envelope({ method: 'TRACE' }) },
    { name: 'params not strings', data: envelope({ params: { id: { $ne: 1 } } }) },
    { name: 'headers with a bad name', data: envelope({ headers: { 'X-Upper': 'v' } }) },
    { name: 'negative deadline', data: envelope({ deadline: -1 }) },
    // Schema-invalid bodies (envelope fine).
    { name: 'body missing title', data: envelope({ body: { text: 'no title' } }) },
    { name: 'body extra field', data: envelope({ body: { title: 't', admin: true } }) },
    { name: 'body not an object', data: envelope({ body: 'title' }) },
    { name: 'body wrong enum', data: envelope({ body: { title: 't', priority: 'urgent' } }) },
    { name: 'body on a GET route', data: envelope({ route: 'notes.list', method: 'GET', body: { a: 1 } }) },
    {
      name: 'bad param',
      data: envelope({
        route: 'notes.get',
        method: 'GET',
        path: '/notes/x',
        params: { id: 'x' },
        body: null,
      }),
    },
    {
      name: 'bad query',
      data: envelope({ route: 'notes.list', method: 'GET', query: { limit: '1000' }, body: null }),
    },
    {
      name: 'query array',
      data: envelope({ route: 'notes.list', method: 'GET', query: { limit: ['1', '2'] }, body: null }),
    },
    { name: 'unknown route', data: envelope({ route: 'notes.drop-all' }) },
    { name: 'route/method mismatch', data: envelope({ method: 'GET' }) },
    // Oversized.
    { name: 'oversized title', data: envelope({ body: { title: 'a'.repeat(100_000) } }) },
    { name: 'oversized text', data: envelope({ body: { title: 't', text: 'a'.repeat(20_001) } }) },
    { name: 'oversized body (4 MB)', data: envelope({ body: { title: 't', blob: 'b'.repeat(4 << 20) } }) },
    { name: 'oversized path', data: envelope({ path: `/${'p'.repeat(10_000)}` }) },
    { name: 'oversized header value', data: envelope({ headers: { 'user-agent': 'u'.repeat(9000) } }) },
    {
      name: 'too many headers',
      data: envelope({ headers: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`h${i}`, 'v'])) }),
    },
    {
      name: 'too many query keys',
      data: envelope({
        route: 'notes.list',
        method: 'GET',
        body: null,
        query: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`q${i}`, '1'])),
      }),
    },
    { name: 'deeply nested body (500 levels)', data: envelope({ body: nested(500, 'x') }) },
    {
      name: 'many tags',
      data: envelope({ body: { title: 't', tags: Array.from({ length: 9 }, (_, i) => `t${i}`) } }),
    },
    // Prototype pollution, in the envelope and in the body, at several depths.
    { name: '__proto__ at the envelope top', data: polluted('v', 0) },
    {
      name: '__proto__ in the body',
      data: own(JSON.stringify(envelope()).replace('"body":{', `"body":{"__proto__":{"polluted":"yes"},`)),
    },
    {
      name: 'constructor.prototype in the body',
      data: envelope({ body: own(`{"title":"t","constructor":{"prototype":{"polluted":"yes"}}}`) }),
    },
    { name: 'pollution 3 deep in the body', data: envelope({ body: own(pollution(3)) }) },
    {
      name: 'pollution 6 deep in the body',
      data: envelope({ body: own(`{"title":"t","tags":[${pollution(6)}]}`) }),
    },
    {
      name: '__proto__ in params',
      data: envelope({
        route: 'notes.get',
        method: 'GET',
        body: null,
        params: own('{"id":"00000000-0000-4000-8000-000000000000","__proto__":"yes"}'),
      }),
    },
    {
      name: 'constructor in query',
      data: envelope({
        route: 'notes.list',
        method: 'GET',
        body: null,
        query: own('{"constructor":"yes","__proto__":"x"}'),
      }),
    },
    { name: '__proto__ header', data: envelope({ headers: own('{"__proto__":"yes"}') }) },
    { name: 'pollution in params at depth 2', data: polluted('params', 2) },
    { name: 'pollution in query at depth 4', data: polluted('query', 4) },
    { name: 'route named __proto__', data: envelope({ route: '__proto__' }) },
    { name: 'route named constructor', data: envelope({ route: 'constructor' }) },
    {
      name: 'route named hasOwnProperty',
      data: envelope({ route: 'hasOwnProperty', method: 'GET', body: null }),
    },
    // Identity: another gateway, a job id that is not the request id, bogus reply keys.
    { name: "another gateway's id", data: envelope({ gatewayId: OTHER, replyTo: 'victim' }) },
    { name: 'job id is not the request id', data: e, jobId: randomUUID() },
    { name: 'reply key with a colon', data: envelope({ replyTo: `x:${queueName(OTHER)}:reply:victim` }) },
    { name: 'reply key with a glob', data: envelope({ replyTo: '*' }) },
    { name: 'reply key with a path', data: envelope({ replyTo: '../../gw-gwb/reply/victim' }) },
    { name: 'reply key empty', data: envelope({ replyTo: '' }) },
    { name: 'reply key too long', data: envelope({ replyTo: 'r'.repeat(200) }) },
    { name: 'gateway id with a colon', data: envelope({ gatewayId: `${GW}:reply` }) },
    // Keyed ids (from a client's Idempotency-Key) are version 8 UUIDs, and only they are.
    { name: 'idempotent flag on a random id', data: envelope({ idempotent: true }) },
    { name: 'keyed id without the flag', data: envelope({ id: keyedId('k1') }) },
    { name: 'keyed id, flag false', data: envelope({ id: keyedId('k2'), idempotent: false }) },
    { name: 'idempotent not a boolean', data: envelope({ idempotent: 'yes' }) },
    // A well-formed request whose deadline has passed: the core must not run it late.
    { name: 'expired deadline', data: envelope({ deadline: Date.now() - 1000 }) },
  ];
}

describe('a compromised gateway', () => {
  const pki = usePki({ brokers: ['b1'] });
  const ctx = useAclRedis({ prefix: PREFIX, gatewayIds: [GW, OTHER] });
  const { as } = ctx;
  /** A connection as a gateway's user that runs BullMQ's scripts by hash, as gateways do. */
  const asGateway = (gw: string) => {
    const client = as(gatewayUser(gw));
    callScriptsByHash(client);
    return client;
  };

  // What a broker does at start: gateways may only call BullMQ's scripts by hash.
  before(() => loadQueueScripts(ctx.admin));

  async function keysOf(gw: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const key of await ctx.admin.keys(`${base(gw)}:*`)) {
      // A worker's stalled-check marker expires on its own (a PX key): not the attacker's doing.
      if (key.endsWith(':stalled-check')) continue;
      out.set(key, JSON.stringify(await ctx.admin.call('DUMP', key)));
    }
    return out;
  }

  async function system(t: import('node:test').TestContext): Promise<{
    broker: Broker;
    core: RunningCore;
    executions: () => number;
    rows: () => Promise<number>;
  }> {
    const { core, schema, executions } = await startCountingCore(t, pki());
    const broker = startTestBroker(
      t,
      aclBrokerDoc(pki(), ctx, { prefix: PREFIX, corePort: core.address.port, gateways: [GW, OTHER] }),
    );
    return {
      broker,
      core,
      // Every execute request the core's dispatcher saw, whatever became of it.
      executions,
      rows: async () =>
        Number(
          ((await sql(`SELECT count(*) AS n FROM ${schema}.nonstop_requests`)).rows[0] as { n: string }).n,
        ),
    };
  }

  /** Waits until the queue holds no job in any state and returns the worker's counts. */
  async function drained(queue: Queue, what: string): Promise<void> {
    let counts: Record<string, number> = {};
    for (let i = 0; i < 300; i++) {
      counts = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'completed', 'failed');
      if (Object.values(counts).every((n) => n === 0)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    const active = await ctx.admin.lrange(`${base(GW)}:active`, 0, -1);
    const left = await Promise.all(
      active.map(async (id) => Object.keys(await ctx.admin.hgetall(`${base(GW)}:${id}`)).join(',')),
    );
    assert.fail(`${what}: jobs left in the queue: ${JSON.stringify(counts)}; active: ${left.join(' | ')}`);
  }

  test('forged jobs never reach the core; the worker keeps serving; nothing is polluted', async (t) => {
    const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort();
    const arrayProtoBefore = Object.getOwnPropertyNames(Array.prototype).sort();
    await ctx.admin.call('ACL', 'LOG', 'RESET');
    const otherKeysBefore = await keysOf(OTHER);

    // The attacker's BullMQ queue, connected exactly as the real gateway connects.
    const attacker = asGateway(GW);
    const queue = new Queue(queueName(GW), {
      connection: attacker,
      prefix: PREFIX,
      skipVersionCheck: true,
      skipWaitingForReady: true,
    });
    t.after(() => queue.close());
    const forged = forgedThroughBullmq();
    for (const f of forged) {
      const data = f.data as { id?: unknown };
      const jobId = f.jobId ?? (typeof data?.id === 'string' && data.id !== '' ? data.id : randomUUID());
      // A real gateway's options: what is judged here is the content (forged options are
      // test/integration/attack-job-options.test.ts's).
      await queue.add(f.name, f.data, { jobId, removeOnComplete: true, removeOnFail: true, attempts: 1 });
    }

    // Raw Redis commands on BullMQ's keys, as the same user: a job hash and a push onto wait.
    const raw = async (id: string, fields: Record<string, string>) => {
      if (Object.keys(fields).length > 0) await attacker.hset(`${base(GW)}:${id}`, fields);
      await attacker.lpush(`${base(GW)}:wait`, id);
      await attacker.zadd(`${base(GW)}:marker`, 0, '0');
    };
    const now = String(Date.now());
    const rawJobs: [string, Record<string, string>][] = [
      ['data not JSON', { name: 'x', data: '{not json', opts: '{}', timestamp: now }],
      [
        'data truncated JSON',
        { name: 'x', data: JSON.stringify(envelope()).slice(0, -3), opts: '{}', timestamp: now },
      ],
      ['data binary', { name: 'x', data: '\u0000\u00ff\u0001', opts: '{}', timestamp: now }],
      [
        'data a huge non-JSON blob (8 MB)',
        { name: 'x', data: 'z'.repeat(8 << 20), opts: '{}', timestamp: now },
      ],
      [
        'data a huge JSON string (8 MB)',
        { name: 'x', data: JSON.stringify('z'.repeat(8 << 20)), opts: '{}', timestamp: now },
      ],
      [
        'data deeply nested arrays',
        { name: 'x', data: `${'['.repeat(100_000)}${']'.repeat(100_000)}`, opts: '{}', timestamp: now },
      ],
      [
        'a body nested 100000 objects deep',
        {
          name: 'x',
          data: JSON.stringify(envelope()).replace(
            '"body":{"title":"forged"}',
            `"body":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`,
          ),
          opts: '{}',
          timestamp: now,
        },
      ],
      ['no data field', { name: 'x', opts: '{}', timestamp: now }],
      ['no fields but a stray one', { stray: '1' }],
      ['opts not JSON', { name: 'x', data: JSON.stringify(envelope()), opts: 'nope', timestamp: now }],
      ['pollution in raw data', { name: 'x', data: pollution(5), opts: '{}', timestamp: now }],
      ['pollution in raw opts', { name: 'x', data: '{}', opts: pollution(3), timestamp: now }],
      [
        'a valid envelope under another job id',
        { name: 'x', data: JSON.stringify(envelope()), opts: '{}', timestamp: now },
      ],
      [
        'another gateway as parent',
        {
          name: 'x',
          data: '{}',
          opts: '{}',
          timestamp: now,
          parentKey: `${base(OTHER)}:victim`,
          parent: JSON.stringify({ id: 'victim', queueKey: base(OTHER) }),
        },
      ],
      [
        'a parent that is not JSON',
        {
          name: 'x',
          data: '{}',
          opts: '{}',
          timestamp: now,
          parentKey: `${base(OTHER)}:victim`,
          parent: '{',
        },
      ],
      ['a dedup id', { name: 'x', data: '{}', opts: '{}', timestamp: now, deid: `../${queueName(OTHER)}:x` }],
    ];
    for (const [, fields] of rawJobs) await raw(randomUUID(), fields);
    // An id on the wait list with no job hash behind it.
    await raw(randomUUID(), {});

    // The system starts only now, so the broker meets the whole backlog at once.
    const sys = await system(t);
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
        replyTimeoutMs: 10_000,
      },
    });
    await untilReady(url);
    const res = await fetch(`${url}/notes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'served after the attack' }),
    });
    assert.equal(res.status, 201, await res.clone().text());

    const observer = new Queue(queueName(GW), { connection: as(ADMIN_USER), prefix: PREFIX });
    t.after(() => observer.close());
    await drained(observer, 'forged jobs');
    const worker = sys.broker.workers.get(GW)!;
    assert.equal(worker.counts.answered, 1, 'only the real request was answered by the core');
    assert.equal(sys.executions(), 1, 'the core saw exactly one execute request');
    assert.equal(await sys.rows(), 1, "the core's request table holds only the real request");
    // Every forged job was taken and refused (tampered, invalid or expired), none executed.
    const refused = worker.counts.tampered + worker.counts.invalid + worker.counts.expired;
    assert.ok(refused >= forged.length, `${refused} refused of ${forged.length} forged through BullMQ`);

    // The invalid ones were answered 400 on the attacker's own reply stream; nothing went to
    // the other gateway's reply streams or keys.
    const replies = await replyTexts(ctx.admin, replyKey(PREFIX, GW, 'attacker'));
    assert.ok(replies.length > 0);
    for (const r of replies) assert.equal((JSON.parse(r) as { status: number }).status, 400, r);
    // The worker of the other gateway's queue writes its own housekeeping keys; nothing else
    // may appear there (a forged parent or dedup key would add dependencies/processed/de: keys).
    const otherKeys = [...(await keysOf(OTHER)).keys()].map((k) => k.slice(base(OTHER).length + 1));
    const housekeeping = new Set(['meta', 'stalled-check', 'events', 'marker', ...otherKeysBefore.keys()]);
    assert.deepEqual(
      otherKeys.filter((k) => !housekeeping.has(k)),
      [],
      "nothing appeared in the other gateway's key space",
    );

    // The broker process: no property appeared on Object.prototype or Array.prototype.
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), protoBefore);
    assert.deepEqual(Object.getOwnPropertyNames(Array.prototype).sort(), arrayProtoBefore);

    // BullMQ itself never met a job it cannot read (data, options or parent not JSON): the
    // screen refused each before BullMQ parsed it, so none was left for the sweeper.
    assert.ok(
      refused >= forged.length + rawJobs.length,
      `${refused} refused of ${forged.length + rawJobs.length}`,
    );
    assert.equal(worker.unreadableRemoved, 0);

    // And it still serves: a second request after the backlog is gone.
    const again = await fetch(`${url}/notes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'and again' }),
    });
    assert.equal(again.status, 201);
    assert.equal(sys.executions(), 2);
  });

  test("a request id the other gateway used gets a conflict, never the other gateway's stored answer", async (t) => {
    const sys = await system(t);
    const queueAs = (gw: string) => {
      const q = new Queue(queueName(gw), {
        connection: asGateway(gw),
        prefix: PREFIX,
        skipVersionCheck: true,
        skipWaitingForReady: true,
      });
      t.after(() => q.close());
      return q;
    };
    const replyOn = async (gw: string, replyTo: string) => {
      const text = await takeReply(as(ADMIN_USER), replyKey(PREFIX, gw, replyTo), 10);
      assert.ok(text !== null, `a reply for ${gw}/${replyTo}`);
      return JSON.parse(text) as { id: string; status: number; body: unknown };
    };
    const mine = queueAs(GW);
    /** Pushes a replay of `id` into this gateway's queue and returns the broker's reply. */
    const replay = async (over: Record<string, unknown>) => {
      const id = String(over.id);
      // BullMQ ignores an add whose job id still exists: wait until the last one is removed.
      for (let i = 0; (await ctx.admin.exists(`${base(GW)}:${id}`)) === 1; i++) {
        assert.ok(i < 100, 'the previous replay was never removed');
        await new Promise((r) => setTimeout(r, 50));
      }
      await mine.add('replay', envelope({ ...over, replyTo: 'replayer' }), { jobId: id });
      return replyOn(GW, 'replayer');
    };

    // The other gateway's request: a note with a secret title.
    const theirs = envelope({ gatewayId: OTHER, replyTo: 'victim', body: { title: 'their secret' } });
    await queueAs(OTHER).add('notes.create', theirs, { jobId: String(theirs.id) });
    assert.equal((await replyOn(OTHER, 'victim')).status, 201);

    // The compromised gateway replays that id, as the same route, as another, and as a keyed one.
    for (const over of [{}, { route: 'notes.list', method: 'GET', body: null }]) {
      const reply = await replay({ ...over, id: theirs.id });
      // The core refuses it 409; the broker reports a core refusal as its own 500.
      assert.ok(reply.status >= 400, JSON.stringify(reply));
      assert.match(JSON.stringify(reply.body), /IDEMPOTENCY_CONFLICT/);
      assert.ok(!JSON.stringify(reply).includes('their secret'), 'the stored answer does not leak');
    }

    // A keyed request of the other gateway's client (id from its Idempotency-Key).
    const keyed = envelope({
      id: keyedId('their-client-key'),
      idempotent: true,
      gatewayId: OTHER,
      replyTo: 'victim',
      body: { title: 'their keyed secret' },
    });
    await queueAs(OTHER).add('notes.create', keyed, { jobId: String(keyed.id) });
    assert.equal((await replyOn(OTHER, 'victim')).status, 201);
    // Replayed with any other request under that key: refused, the answer does not leak.
    for (const over of [
      { body: { title: 'a guess' } },
      { route: 'notes.list', method: 'GET', body: null },
      { body: { title: 'their keyed secret', text: 'x' } },
    ]) {
      const reply = await replay({ ...over, id: keyed.id, idempotent: true });
      assert.ok(reply.status >= 400, JSON.stringify(reply));
      assert.match(JSON.stringify(reply.body), /IDEMPOTENCY_KEY_REUSED|IDEMPOTENCY_CONFLICT/);
      assert.ok(!JSON.stringify(reply).includes('their keyed secret'), 'the stored answer does not leak');
    }
    // By design (a client's retry through any gateway), only the identical request under the
    // same key gets the stored answer: knowing both is knowing the request already.
    const same = await replay({ id: keyed.id, idempotent: true, body: { title: 'their keyed secret' } });
    assert.equal(same.status, 201);
    assert.equal((same as { replayed?: boolean }).replayed, true);
    assert.equal(await sys.rows(), 2, "two requests recorded: the other gateway's");
  });

  test("with its own credentials it cannot read, write or delete another gateway's queue, nor administer Redis", async (t) => {
    // The other gateway has a request waiting: something worth stealing or destroying.
    const victim = new Queue(queueName(OTHER), {
      connection: asGateway(OTHER),
      prefix: PREFIX,
      skipVersionCheck: true,
      skipWaitingForReady: true,
    });
    t.after(() => victim.close());
    const secret = envelope({ gatewayId: OTHER, replyTo: 'victim', body: { title: 'secret' } });
    await victim.add('notes.create', secret, { jobId: String(secret.id) });
    await addReply(ctx.admin, replyKey(PREFIX, OTHER, 'victim'), 'a reply for the other gateway');
    const before = await keysOf(OTHER);
    await ctx.admin.call('ACL', 'LOG', 'RESET');

    const gw = asGateway(GW);
    const job = `${base(OTHER)}:${String(secret.id)}`;
    // BullMQ pointed at the other gateway's queue, with this gateway's credentials.
    const stolen = new Queue(queueName(OTHER), {
      connection: gw,
      prefix: PREFIX,
      skipVersionCheck: true,
      skipWaitingForReady: true,
    });
    stolen.on('error', () => {});
    t.after(() => stolen.close());
    const attempts: [string, () => Promise<unknown>][] = [
      ['BullMQ add to the other queue', () => stolen.add('notes.create', envelope({ gatewayId: OTHER }))],
      ['BullMQ getJob', () => stolen.getJob(String(secret.id))],
      ['BullMQ getWaiting', () => stolen.getWaiting()],
      ['BullMQ getJobCounts', () => stolen.getJobCounts()],
      ['BullMQ drain', () => stolen.drain()],
      ['BullMQ obliterate', () => stolen.obliterate({ force: true })],
      ['BullMQ pause', () => stolen.pause()],
      ['BullMQ remove', () => stolen.remove(String(secret.id))],
      ['HGETALL job', () => gw.hgetall(job)],
      ['HGET job data', () => gw.hget(job, 'data')],
      ['HSET job data', () => gw.hset(job, 'data', '{}')],
      ['DEL job', () => gw.del(job)],
      ['UNLINK job', () => gw.call('UNLINK', job)],
      ['EXISTS job', () => gw.exists(job)],
      ['TYPE job', () => gw.call('TYPE', job)],
      ['DUMP job', () => gw.call('DUMP', job)],
      ['RENAME job', () => gw.call('RENAME', job, `${base(GW)}:mine`)],
      ['COPY job', () => gw.call('COPY', job, `${base(GW)}:mine`)],
      ['LRANGE wait', () => gw.lrange(`${base(OTHER)}:wait`, 0, -1)],
      ['LPOP wait', () => gw.lpop(`${base(OTHER)}:wait`)],
      ['LPUSH wait', () => gw.lpush(`${base(OTHER)}:wait`, 'x')],
      ['DEL wait', () => gw.del(`${base(OTHER)}:wait`)],
      ['ZADD marker', () => gw.zadd(`${base(OTHER)}:marker`, 0, '0')],
      ['XADD events', () => gw.xadd(`${base(OTHER)}:events`, '*', 'event', 'x')],
      ['HSET meta (pause)', () => gw.hset(`${base(OTHER)}:meta`, 'paused', '1')],
      ['XREAD its replies', () => gw.xread('STREAMS', replyKey(PREFIX, OTHER, 'victim'), '0-0')],
      ['XTRIM its replies', () => gw.xtrim(replyKey(PREFIX, OTHER, 'victim'), 'MINID', '9-0')],
      ['XADD a forged reply', () => gw.xadd(replyKey(PREFIX, OTHER, 'victim'), '*', 'reply', '{}')],
      ['EVAL with its keys', () => gw.eval("return redis.call('HGETALL', KEYS[1])", 1, job)],
      ['EVAL naming its keys', () => gw.eval(`return redis.call('DEL', '${job}')`, 0)],
      ['KEYS', () => gw.keys('*')],
      ['SCAN', () => gw.scan('0', 'MATCH', `${base(OTHER)}:*`)],
      ['RANDOMKEY', () => gw.call('RANDOMKEY')],
      ['DBSIZE', () => gw.call('DBSIZE')],
      ['INFO', () => gw.info('keyspace')],
      ['ACL WHOAMI', () => gw.call('ACL', 'WHOAMI')],
      ['ACL GETUSER', () => gw.call('ACL', 'GETUSER', gatewayUser(OTHER))],
      ['ACL SETUSER', () => gw.call('ACL', 'SETUSER', gatewayUser(GW), 'allkeys')],
      ['AUTH as the other gateway (no password)', () => gw.call('AUTH', gatewayUser(OTHER), 'guess')],
      ['CONFIG SET', () => gw.call('CONFIG', 'SET', 'dir', '/tmp')],
      ['FLUSHALL', () => gw.flushall()],
      ['SCRIPT FLUSH', () => gw.call('SCRIPT', 'FLUSH')],
      ['FUNCTION FLUSH', () => gw.call('FUNCTION', 'FLUSH')],
      ['SELECT 1', () => gw.call('SELECT', '1')],
      ['SWAPDB', () => gw.call('SWAPDB', '0', '1')],
      ['SAVE', () => gw.call('SAVE')],
      ['BGSAVE', () => gw.call('BGSAVE')],
      ['REPLICAOF', () => gw.call('REPLICAOF', '198.18.0.66', '6379')],
      ['MIGRATE', () => gw.call('MIGRATE', '198.18.0.66', '6379', job, '0', '1000')],
      ['CLIENT LIST', () => gw.call('CLIENT', 'LIST')],
      ['CLIENT KILL', () => gw.call('CLIENT', 'KILL', 'TYPE', 'normal')],
      ['DEBUG', () => gw.call('DEBUG', 'SLEEP', '0')],
      ['SHUTDOWN', () => gw.call('SHUTDOWN', 'NOSAVE')],
      ['SUBSCRIBE-side PUBLISH', () => gw.call('PUBLISH', `${base(OTHER)}:events`, 'x')],
    ];
    const allowed: string[] = [];
    for (const [what, attempt] of attempts) {
      const outcome = await attempt().then(
        () => 'done',
        (err: Error) => err.message,
      );
      // A refusal by the ACL: NOPERM, or inside a script "The user executing the script can't",
      // or WRONGPASS for a guessed password.
      if (!/NOPERM|The user executing the script can't|WRONGPASS/.test(outcome))
        allowed.push(`${what}: ${outcome}`);
    }
    assert.deepEqual(allowed, [], 'every attempt is refused');
    assert.equal(await ctx.admin.ping(), 'PONG', 'the server is still up');
    assert.deepEqual(await keysOf(OTHER), before, "the other gateway's keys are exactly as they were");
    const denied = ((await ctx.admin.call('ACL', 'LOG', '1000')) as unknown[][]).length;
    assert.ok(denied > 0, 'the refusals are in the ACL log');
    await ctx.admin.del(...before.keys());
  });
});
