// Client Idempotency-Key on the whole path: gateways → Redis (BullMQ) → broker → core.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { Queue } from 'bullmq';
import type { Application } from '../../core/application.js';
import { startCore } from '../../core/server.js';
import { writeIdempotencySecret } from '../../gateway/idempotency-secret.js';
import { keyedId } from '../helpers/idempotency.js';
import { queueName } from '../../lib/envelope.js';
import { silentLogger } from '../../lib/log.js';
import { brokerConfigDoc, startTestBroker } from '../helpers/broker.js';
import { slowNotes, testCoreConfig } from '../helpers/core.js';
import { tempDir } from '../helpers/files.js';
import { startTestGateway, untilReady } from '../helpers/gateway.js';
import { sql, useTestSchema } from '../helpers/pg.js';
import { usePki } from '../helpers/pki.js';
import { REDIS_HOST, REDIS_PORT, testRedis } from '../helpers/redis.js';

interface World {
  /** gw1, gw2: two gateways; gw1b: a second process of gw1 (as after a restart). */
  readonly urls: { gw1: string; gw2: string; gw1b: string };
  readonly prefix: string;
  readonly schema: string;
  count(table: 'notes' | 'nonstop_requests'): Promise<number>;
  queue(gatewayId: string): Queue;
}

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

async function send(
  url: string,
  key: string | undefined,
  body: unknown,
  init: { method?: string; path?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await fetch(`${url}${init.path ?? '/notes'}`, {
    method: init.method ?? 'POST',
    headers: {
      ...init.headers,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(key === undefined ? {} : { 'idempotency-key': key }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

function code(answer: Answer): unknown {
  return (answer.body.error as { code?: unknown } | undefined)?.code;
}

describe('Idempotency-Key', () => {
  const pki = usePki({ brokers: ['b1'] });

  async function world(t: TestContext, application?: Application): Promise<World> {
    const redis = testRedis(t);
    const { url: dbUrl, schema } = await useTestSchema(t);
    const core = await startCore(
      testCoreConfig(pki(), { url: dbUrl, schema }),
      silentLogger(),
      application === undefined ? {} : { application },
    );
    t.after(() => core.close());
    const replyTimeoutMs = 20_000;
    // The broker bounds each job's deadline by what its gateway waits: tell it the same.
    const gateways = ['gw1', 'gw2'].map((id) => ({ id, replyTimeoutMs }));
    startTestBroker(
      t,
      brokerConfigDoc(pki(), { prefix: redis.prefix, corePort: core.address.port, extra: { gateways } }),
    );
    const overrides = { replyTimeoutMs };
    const gw1 = await startTestGateway(t, { prefix: redis.prefix, id: 'gw1', overrides });
    const gw2 = await startTestGateway(t, { prefix: redis.prefix, id: 'gw2', overrides });
    const gw1b = await startTestGateway(t, { prefix: redis.prefix, id: 'gw1', overrides });
    for (const g of [gw1, gw2, gw1b]) await untilReady(g.url);
    const queues = new Map<string, Queue>();
    return {
      urls: { gw1: gw1.url, gw2: gw2.url, gw1b: gw1b.url },
      prefix: redis.prefix,
      schema,
      count: async (table) => {
        const result = await sql(`SELECT count(*) AS n FROM ${schema}.${table}`);
        return Number((result.rows[0] as { n: string }).n);
      },
      queue: (gatewayId) => {
        let q = queues.get(gatewayId);
        if (q === undefined) {
          q = new Queue(queueName(gatewayId), {
            connection: { host: REDIS_HOST, port: REDIS_PORT },
            prefix: redis.prefix,
          });
          const made = q;
          t.after(() => made.close());
          queues.set(gatewayId, q);
        }
        return q;
      },
    };
  }

  test('the same key twice has one effect; the second answer is the replay of the first', async (t) => {
    const w = await world(t);
    const first = await send(w.urls.gw1, 'order-1', { title: 'once', tags: ['a'] });
    assert.equal(first.status, 201);
    assert.equal(first.headers.get('x-request-id'), keyedId('order-1'));
    assert.equal(first.headers.get('x-nonstop-replayed'), null);

    const again = await send(w.urls.gw1, 'order-1', { tags: ['a'], title: 'once' });
    assert.equal(again.status, 201);
    assert.deepEqual(again.body, first.body, 'the stored answer, not a new note');
    assert.equal(again.headers.get('x-nonstop-replayed'), '1');
    assert.equal(again.headers.get('x-request-id'), first.headers.get('x-request-id'));
    // The quoted sf-string form names the same key.
    const quoted = await send(w.urls.gw1, '"order-1"', { title: 'once', tags: ['a'] });
    assert.equal(quoted.status, 201);
    assert.deepEqual(quoted.body, first.body);
    assert.equal(await w.count('notes'), 1);
    assert.equal(await w.count('nonstop_requests'), 1);
  });

  test('the same key through two different gateways has one effect', async (t) => {
    const w = await world(t);
    const viaGw1 = await send(w.urls.gw1, 'order-2', { title: 'two doors' });
    const viaGw2 = await send(w.urls.gw2, 'order-2', { title: 'two doors' });
    assert.equal(viaGw1.status, 201);
    assert.equal(viaGw2.status, 201);
    assert.deepEqual(viaGw2.body, viaGw1.body);
    assert.equal(viaGw2.headers.get('x-nonstop-replayed'), '1');
    assert.equal(await w.count('notes'), 1);
    // Unkeyed requests are unchanged: each one is new, ids are random version 4 UUIDs.
    const plain1 = await send(w.urls.gw1, undefined, { title: 'plain' });
    const plain2 = await send(w.urls.gw1, undefined, { title: 'plain' });
    assert.equal(plain1.status, 201);
    assert.equal(plain2.status, 201);
    assert.notEqual(plain1.body.id, plain2.body.id);
    assert.match(plain1.headers.get('x-request-id') ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4/);
    assert.equal(await w.count('notes'), 3);
  });

  test('the same key for a different request is 422 and has no second effect', async (t) => {
    const w = await world(t);
    const first = await send(w.urls.gw1, 'order-3', { title: 'original' });
    assert.equal(first.status, 201);
    const otherBody = await send(w.urls.gw2, 'order-3', { title: 'changed' });
    assert.equal(otherBody.status, 422);
    assert.equal(code(otherBody), 'NONSTOP_ERR_IDEMPOTENCY_KEY_REUSED');
    assert.match(
      String((otherBody.body.error as { message: string }).message),
      /reused for a different request/,
    );
    const otherRoute = await send(w.urls.gw1, 'order-3', undefined, {
      method: 'GET',
      path: '/notes?limit=5',
    });
    assert.equal(otherRoute.status, 422);
    assert.equal(code(otherRoute), 'NONSTOP_ERR_IDEMPOTENCY_KEY_REUSED');
    assert.equal(await w.count('notes'), 1);
    // The original request still replays.
    const again = await send(w.urls.gw1, 'order-3', { title: 'original' });
    assert.equal(again.status, 201);
    assert.deepEqual(again.body, first.body);
  });

  test('a retry while the first is still in flight is 409 with Retry-After: 1', async (t) => {
    const w = await world(t, slowNotes(2500));
    const first = send(w.urls.gw1, 'order-4', { title: 'slow' });
    const queue = w.queue('gw1');
    for (let i = 0; (await queue.getActiveCount()) === 0; i++) {
      assert.ok(i < 200, 'the broker never took the job');
      await new Promise((r) => setTimeout(r, 25));
    }
    // The same gateway process, and another process of the same gateway (a restart): the job
    // is in their queue and its reply goes to the first waiter.
    for (const url of [w.urls.gw1, w.urls.gw1b]) {
      const busy = await send(url, 'order-4', { title: 'slow' });
      assert.equal(busy.status, 409, url);
      assert.equal(code(busy), 'NONSTOP_ERR_IDEMPOTENCY_KEY_IN_FLIGHT');
      assert.equal(busy.headers.get('retry-after'), '1');
      assert.equal(busy.headers.get('x-request-id'), keyedId('order-4'));
    }
    const done = await first;
    assert.equal(done.status, 201);
    // (The broker's own attempt times out before the slow handler ends and its retry may get the
    // replay, so this answer may carry x-nonstop-replayed itself.)
    // Once answered, the retry gets the stored answer (after BullMQ removed the finished job).
    let retry: Answer;
    for (let i = 0; ; i++) {
      retry = await send(w.urls.gw1b, 'order-4', { title: 'slow' });
      if (retry.status !== 409) break;
      assert.ok(i < 50, 'still in flight long after it was answered');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(retry.status, 201);
    assert.deepEqual(retry.body, done.body);
    assert.equal(retry.headers.get('x-nonstop-replayed'), '1');
    assert.equal(await w.count('notes'), 1);
  });

  test('an invalid key is 400 and nothing is queued', async (t) => {
    const w = await world(t);
    for (const key of ['has space', 'k'.repeat(129), 'a/b', '""']) {
      const res = await send(w.urls.gw1, key, { title: 'never' });
      assert.equal(res.status, 400, key);
      assert.equal(code(res), 'NONSTOP_ERR_IDEMPOTENCY_KEY_INVALID');
      assert.equal(res.headers.get('x-request-id'), null);
    }
    const counts = await w.queue('gw1').getJobCounts('wait', 'active', 'completed', 'failed', 'delayed');
    assert.deepEqual(counts, { wait: 0, active: 0, completed: 0, failed: 0, delayed: 0 });
    assert.equal(await w.count('nonstop_requests'), 0, 'the core never saw any of them');
    assert.equal(await w.count('notes'), 0);
  });

  test('the same key and body from another identity is never the stored answer', async (t) => {
    const w = await world(t);
    const alice = { authorization: 'Bearer alice-token' };
    const first = await send(w.urls.gw1, 'order-5', { title: 'mine' }, { headers: alice });
    assert.equal(first.status, 201);
    assert.equal(first.headers.get('x-request-id'), keyedId('order-5', alice));
    // A cookie the route does not take is dropped, and is no part of the identity: the same
    // client's retry, whatever trackers its browser added. (A route's own cookie is identity,
    // test/unit/idempotency-key.test.ts.)
    const withCookie = await send(
      w.urls.gw2,
      'order-5',
      { title: 'mine' },
      { headers: { ...alice, cookie: 'tracker=1' } },
    );
    assert.equal(withCookie.status, 201);
    assert.equal(withCookie.headers.get('x-request-id'), first.headers.get('x-request-id'));
    assert.equal(withCookie.headers.get('x-nonstop-replayed'), '1', "alice's stored answer");
    const others: Record<string, string>[] = [{ authorization: 'Bearer mallory-token' }, {}];
    const ids = new Set([first.headers.get('x-request-id')]);
    for (const headers of others) {
      const other = await send(w.urls.gw2, 'order-5', { title: 'mine' }, { headers });
      assert.equal(other.status, 201, JSON.stringify(headers));
      assert.equal(other.headers.get('x-nonstop-replayed'), null, "not the replay of alice's answer");
      assert.notDeepEqual(other.body, first.body);
      ids.add(other.headers.get('x-request-id'));
    }
    assert.equal(ids.size, 3, 'each identity has its own request id for the key');
    // Alice's retry, through the other gateway, still gets her stored answer.
    const retry = await send(w.urls.gw2, 'order-5', { title: 'mine' }, { headers: alice });
    assert.equal(retry.status, 201);
    assert.deepEqual(retry.body, first.body);
    assert.equal(retry.headers.get('x-nonstop-replayed'), '1');
    assert.equal(await w.count('notes'), 3);
    // The core keeps no identity header value.
    const stored = await sql(`SELECT * FROM ${w.schema}.nonstop_requests`);
    assert.ok(!JSON.stringify(stored.rows).includes('alice-token'), 'no identity in clear in the core');
  });

  test('the request id is not a function of the key alone; without a secret keys are refused', async (t) => {
    const w = await world(t);
    const dir = tempDir(t);
    const otherSecret = join(dir, 'idempotency.secret');
    writeIdempotencySecret(otherSecret);
    const other = await startTestGateway(t, {
      prefix: w.prefix,
      id: 'gw2',
      overrides: { idempotency: { secretFile: otherSecret } },
    });
    const none = await startTestGateway(t, { prefix: w.prefix, id: 'gw2', overrides: { idempotency: {} } });
    await untilReady(other.url);
    const a = await send(w.urls.gw1, 'order-6', { title: 'six' });
    const b = await send(other.url, 'order-6', { title: 'six' });
    assert.equal(a.status, 201);
    assert.equal(b.status, 201);
    assert.notEqual(a.headers.get('x-request-id'), b.headers.get('x-request-id'), 'another secret');
    const plainHash = createHash('sha256').update('nonstop/idempotency-key/v1\0order-6').digest('hex');
    assert.notEqual(a.headers.get('x-request-id')?.slice(0, 8), plainHash.slice(0, 8));
    const refused = await send(none.url, 'order-6', { title: 'six' });
    assert.equal(refused.status, 501);
    assert.equal(code(refused), 'NONSTOP_ERR_IDEMPOTENCY_UNAVAILABLE');
    assert.equal((await send(none.url, undefined, { title: 'plain' })).status, 201, 'unkeyed is served');
  });
});
