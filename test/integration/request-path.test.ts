// The whole request path on loopback: gateway → Redis (BullMQ) → broker → core (PostgreSQL).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { Queue } from 'bullmq';
import { startCore } from '../../core/server.js';
import { queueName, replyKey } from '../../lib/envelope.js';
import { silentLogger } from '../../lib/log.js';
import { brokerConfigDoc, spawnBroker, startTestBroker } from '../helpers/broker.js';
import { tempDir } from '../helpers/files.js';
import { slowNotes, testCoreConfig } from '../helpers/core.js';
import { startTestGateway, untilReady } from '../helpers/gateway.js';
import { sql, useTestSchema } from '../helpers/pg.js';
import { usePki } from '../helpers/pki.js';
import { makeEnvelope } from '../helpers/envelope.js';
import { notes } from '../helpers/execute.js';
import { REDIS_HOST, REDIS_PORT, testRedis, type TestRedis } from '../helpers/redis.js';
import { takeReply } from '../helpers/replies.js';

interface World {
  readonly url: string;
  readonly redis: TestRedis;
  readonly prefix: string;
  readonly schema: string;
  readonly corePort: number;
  count(table: 'notes' | 'nonstop_requests'): Promise<number>;
}

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

function post(url: string, body: unknown): Promise<Response> {
  return fetch(`${url}/notes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('request path', () => {
  const pki = usePki({ brokers: ['b1', 'b2'] });

  async function world(t: TestContext, gatewayOverrides: Record<string, unknown> = {}): Promise<World> {
    const redis = testRedis(t);
    const { url: dbUrl, schema } = await useTestSchema(t);
    const core = await startCore(testCoreConfig(pki(), { url: dbUrl, schema }), silentLogger());
    t.after(() => core.close());
    startTestBroker(t, brokerConfigDoc(pki(), { prefix: redis.prefix, corePort: core.address.port }));
    const { url } = await startTestGateway(t, { prefix: redis.prefix, overrides: gatewayOverrides });
    await untilReady(url);
    return {
      url,
      redis,
      prefix: redis.prefix,
      schema,
      corePort: core.address.port,
      count: async (table) => {
        const result = await sql(`SELECT count(*) AS n FROM ${schema}.${table}`);
        return Number((result.rows[0] as { n: string }).n);
      },
    };
  }

  test('a valid request round-trips to the core and back', async (t) => {
    const w = await world(t);
    const created = await post(w.url, { title: 'Buy milk', tags: ['errands'] });
    assert.equal(created.status, 201);
    const note = await json(created);
    assert.equal(note.title, 'Buy milk');
    assert.equal(note.priority, 'normal', 'schema defaults are filled in by the broker');
    assert.match(created.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);

    const read = await fetch(`${w.url}/notes/${String(note.id)}`);
    assert.equal(read.status, 200);
    assert.equal((await json(read)).title, 'Buy milk');

    const list = await fetch(`${w.url}/notes?limit=10`);
    assert.equal(list.status, 200);
    assert.equal(((await json(list)).items as unknown[]).length, 1);
    assert.equal(await w.count('notes'), 1);
  });

  test('an invalid request gets 400 with the schema errors and never reaches the core', async (t) => {
    const w = await world(t);
    const res = await post(w.url, { title: '', colour: 'red', tags: ['Not A Tag'] });
    assert.equal(res.status, 400);
    const body = (await json(res)) as { error: { code: string; details: { in: string; field: string }[] } };
    assert.equal(body.error.code, 'NONSTOP_ERR_VALIDATION_FAILED');
    // Validation stops at the body's first error (a refusal costs no more than it says).
    const fields = body.error.details.map((d) => `${d.in}:${d.field}`);
    assert.equal(fields.length, 1, JSON.stringify(fields));
    assert.ok(['body:colour', 'body:tags[0]', 'body:title'].includes(fields[0]!), fields[0]);

    const badParam = await fetch(`${w.url}/notes/not-a-uuid`);
    assert.equal(badParam.status, 400);
    const badQuery = await fetch(`${w.url}/notes?limit=0&unknown=1`);
    assert.equal(badQuery.status, 400);

    assert.equal(await w.count('nonstop_requests'), 0, 'the core never saw any of them');
    assert.equal(await w.count('notes'), 0);
  });

  test('tampered jobs are dropped and the worker keeps serving', async (t) => {
    const redis = testRedis(t);
    const { url: dbUrl, schema } = await useTestSchema(t);
    const core = await startCore(testCoreConfig(pki(), { url: dbUrl, schema }), silentLogger());
    t.after(() => core.close());
    const queue = new Queue(queueName('gw1'), {
      connection: { host: REDIS_HOST, port: REDIS_PORT },
      prefix: redis.prefix,
    });
    t.after(() => queue.close());
    // Forged jobs wait in the queue before any broker runs.
    const forged: unknown[] = [
      'just a string',
      { v: 1, id: 'x' },
      { __proto__: { polluted: true }, constructor: { prototype: { polluted: true } } },
      { title: 'a'.repeat(100_000) },
    ];
    for (const data of forged) await queue.add('notes.create', data, { jobId: randomUUID() });
    // A well-formed envelope claiming a client key for a random id (keyed ids are version 8).
    const falseKey = {
      ...makeEnvelope({ ...notes.create({ title: 'forged' }), replyTo: 'x' }),
      idempotent: true,
    };
    await queue.add('notes.create', falseKey, { jobId: falseKey.id });
    // A job whose stored data is not even JSON: BullMQ itself cannot read it.
    const raw = await queue.add('notes.create', {}, { jobId: randomUUID() });
    await redis.client.hset(`${redis.prefix}:${queueName('gw1')}:${raw.id}`, 'data', '{not json');

    const broker = startTestBroker(
      t,
      brokerConfigDoc(pki(), {
        prefix: redis.prefix,
        corePort: core.address.port,
        extra: { lockDurationMs: 1000, stalledIntervalMs: 500 },
      }),
    );
    const { url } = await startTestGateway(t, { prefix: redis.prefix });
    await untilReady(url);
    const ok = await post(url, { title: 'still served' });
    assert.equal(ok.status, 201);
    assert.equal(((await sql(`SELECT count(*) AS n FROM ${schema}.notes`)).rows[0] as { n: string }).n, '1');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);

    // Every forged job was taken and removed, the unreadable one too; none is left behind.
    let counts: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      counts = await queue.getJobCounts('wait', 'active', 'completed', 'failed');
      if (Object.values(counts).every((n) => n === 0)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(counts, { wait: 0, active: 0, completed: 0, failed: 0 });
    const worker = broker.workers.get('gw1')!;
    // The job that is not JSON is refused by the broker's screen before BullMQ reads it.
    assert.equal(worker.counts.tampered, forged.length + 2);
    assert.equal(worker.unreadableRemoved, 0);
  });

  test('a job delivered twice has one effect; the second delivery gets the stored answer', async (t) => {
    const w = await world(t);
    const queue = new Queue(queueName('gw1'), {
      connection: { host: REDIS_HOST, port: REDIS_PORT },
      prefix: w.prefix,
    });
    t.after(() => queue.close());
    const first = await post(w.url, { title: 'once' });
    assert.equal(first.status, 201);
    const requestId = first.headers.get('x-request-id')!;
    const note = await json(first);

    // Deliver the same request again, as a broker crash after commit would.
    const envelope = {
      v: 1,
      id: requestId,
      route: 'notes.create',
      method: 'POST',
      path: '/notes',
      params: {},
      query: {},
      headers: {},
      body: { title: 'once' },
      clientIp: '127.0.0.1',
      gatewayId: 'gw1',
      replyTo: 'test-listener',
      receivedAt: Date.now(),
      deadline: Date.now() + 5000,
    };
    const replyStream = replyKey(w.prefix, 'gw1', 'test-listener');
    // The reply can reach the client before BullMQ removes the finished job; while it exists,
    // adding the same job id again would be a no-op rather than a second delivery.
    for (let i = 0; (await queue.getJob(requestId)) !== undefined; i++) {
      assert.ok(i < 100, 'the first job was never removed');
      await new Promise((r) => setTimeout(r, 20));
    }
    await queue.add('notes.create', envelope, {
      jobId: requestId,
      removeOnComplete: true,
      removeOnFail: true,
    });
    const popped = await takeReply(w.redis.client, replyStream, 5);
    assert.ok(popped !== null, 'the second delivery is answered');
    const reply = JSON.parse(popped) as { status: number; body: { id: string } };
    assert.equal(reply.status, 201);
    assert.equal(reply.body.id, note.id, 'the stored answer, not a new note');
    assert.equal(await w.count('notes'), 1);
    assert.equal(await w.count('nonstop_requests'), 1);
  });

  test('with the core down past the deadline the client gets 504', async (t) => {
    const redis = testRedis(t);
    // A broker pointed at a port where no core listens keeps retrying until the deadline.
    startTestBroker(t, brokerConfigDoc(pki(), { prefix: redis.prefix, corePort: 1 }));
    const { url } = await startTestGateway(t, { prefix: redis.prefix, overrides: { replyTimeoutMs: 1500 } });
    await untilReady(url);
    const started = Date.now();
    const res = await post(url, { title: 'nobody home' });
    assert.equal(res.status, 504);
    assert.ok(Date.now() - started >= 1400, 'answered at the deadline, not before');
    assert.match(
      String(((await json(res)) as { error: { code: string } }).error.code),
      /NONSTOP_ERR_(REPLY_TIMEOUT|CORE_UNAVAILABLE)/,
    );
  });

  test('a broker killed mid-job leaves the job to another broker, with one effect', async (t) => {
    const redis = testRedis(t);
    const { url: dbUrl, schema } = await useTestSchema(t);
    // notes.create holds its transaction open for a while, so broker A dies while it runs.
    const slow = slowNotes(1500);
    const core = await startCore(testCoreConfig(pki(), { url: dbUrl, schema }), silentLogger(), {
      application: slow,
    });
    t.after(() => core.close());
    const corePort = core.address.port;
    const { url } = await startTestGateway(t, { prefix: redis.prefix, overrides: { replyTimeoutMs: 20000 } });
    await untilReady(url);

    const fastRecovery = { lockDurationMs: 2000, stalledIntervalMs: 500 };
    const brokerA = spawnBroker(
      t,
      tempDir(t),
      brokerConfigDoc(pki(), { prefix: redis.prefix, corePort, id: 'b1', extra: fastRecovery }),
    );
    const answer = post(url, { title: 'survives a broker crash' });
    const queue = new Queue(queueName('gw1'), {
      connection: { host: REDIS_HOST, port: REDIS_PORT },
      prefix: redis.prefix,
    });
    t.after(() => queue.close());
    // Broker A is a process of its own: its start is part of the wait (seconds on a loaded machine).
    for (let i = 0; (await queue.getActiveCount()) === 0; i++) {
      assert.ok(i < 400, 'broker A never took the job (20 s)');
      await new Promise((r) => setTimeout(r, 50));
    }
    brokerA.kill('SIGKILL');
    startTestBroker(
      t,
      brokerConfigDoc(pki(), { prefix: redis.prefix, corePort, id: 'b2', extra: fastRecovery }),
    );

    const res = await answer;
    assert.equal(res.status, 201);
    const note = await json(res);
    const rows = await sql(`SELECT id FROM ${schema}.notes`);
    assert.deepEqual(
      rows.rows.map((r: { id: string }) => r.id),
      [note.id],
      'exactly one note, the one the client was told about',
    );
  });

  test('a broker shutting down finishes the job it has in flight before it stops', async (t) => {
    const redis = testRedis(t);
    const { url: dbUrl, schema } = await useTestSchema(t);
    const slow = slowNotes(1000);
    const core = await startCore(testCoreConfig(pki(), { url: dbUrl, schema }), silentLogger(), {
      application: slow,
    });
    t.after(() => core.close());
    const broker = startTestBroker(
      t,
      brokerConfigDoc(pki(), { prefix: redis.prefix, corePort: core.address.port }),
    );
    const { url } = await startTestGateway(t, { prefix: redis.prefix, overrides: { replyTimeoutMs: 10000 } });
    await untilReady(url);
    const queue = new Queue(queueName('gw1'), {
      connection: { host: REDIS_HOST, port: REDIS_PORT },
      prefix: redis.prefix,
    });
    t.after(() => queue.close());

    let answeredAt = 0;
    const answer = post(url, { title: 'finished during shutdown' }).then((res) => {
      answeredAt = Date.now();
      return res;
    });
    for (let i = 0; (await queue.getActiveCount()) === 0; i++) {
      assert.ok(i < 100, 'the broker never took the job');
      await new Promise((r) => setTimeout(r, 20));
    }
    await broker.close();
    const closedAt = Date.now();
    const res = await answer;
    assert.equal(res.status, 201);
    assert.ok(
      answeredAt > 0 && answeredAt <= closedAt + 50,
      'the reply was delivered before close() returned',
    );
    assert.equal(await queue.getActiveCount(), 0);
  });
});
