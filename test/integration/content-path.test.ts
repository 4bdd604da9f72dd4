// Answers of any type and cookies from the core to the reply a gateway reads from Redis:
// core (PostgreSQL) → broker → the reply stream, for a JS handler and for an upstream
// application, and their replays, which carry the same content and cookies.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { Queue } from 'bullmq';
import { notesApplication } from '../../core/app/notes/index.js';
import type { Application } from '../../core/application.js';
import { startCore } from '../../core/server.js';
import { queueName, replyKey, type Envelope, type Reply } from '../../lib/envelope.js';
import { silentLogger } from '../../lib/log.js';
import { brokerConfigDoc, startTestBroker } from '../helpers/broker.js';
import { testCoreConfig } from '../helpers/core.js';
import { makeEnvelope } from '../helpers/envelope.js';
import { notes } from '../helpers/execute.js';
import { useTestSchema } from '../helpers/pg.js';
import { usePki } from '../helpers/pki.js';
import { REDIS_HOST, REDIS_PORT, testRedis, type TestRedis } from '../helpers/redis.js';
import { startTestUpstream } from '../helpers/upstream.js';
import { takeReply } from '../helpers/replies.js';

const page = '<!doctype html><title>Notes</title><p>Grüße</p>';
const cookies = ['sid=s3cr3t; Path=/; HttpOnly; Secure; SameSite=Lax', 'theme=dark; Max-Age=3600'];

/** notes.get answers HTML with two cookies; notes.list answers 4 MiB of bytes. */
const htmlNotes: Application = {
  ...notesApplication,
  handlers: {
    ...notesApplication.handlers,
    'notes.get': () =>
      Promise.resolve({ status: 200, content: { type: 'text/html; charset=utf-8', data: page }, cookies }),
    'notes.list': () =>
      Promise.resolve({
        status: 200,
        content: { type: 'application/octet-stream', data: new Uint8Array(4 * 1024 * 1024) },
      }),
  },
};

interface Path {
  deliver(envelope: Envelope): Promise<Reply>;
}

/** A broker for gw1 in front of the core on `corePort`; `deliver` queues a job and reads its reply. */
function brokerPath(
  t: TestContext,
  redis: TestRedis,
  corePort: number,
  pki: Parameters<typeof brokerConfigDoc>[0],
): Path {
  startTestBroker(t, brokerConfigDoc(pki, { prefix: redis.prefix, corePort }));
  const queue = new Queue(queueName('gw1'), {
    connection: { host: REDIS_HOST, port: REDIS_PORT },
    prefix: redis.prefix,
  });
  t.after(() => queue.close());
  return {
    deliver: async (envelope) => {
      // A redelivery: the job id is free again only once the broker removed the finished job.
      for (let i = 0; (await queue.getJob(envelope.id)) !== undefined; i++) {
        assert.ok(i < 200, 'the previous job was never removed');
        await new Promise((r) => setTimeout(r, 20));
      }
      await queue.add(envelope.route, envelope, {
        jobId: envelope.id,
        removeOnComplete: true,
        removeOnFail: true,
      });
      const text = await takeReply(redis.client, replyKey(redis.prefix, 'gw1', envelope.replyTo), 10);
      assert.ok(text !== null, 'a reply arrived');
      return JSON.parse(text) as Reply;
    },
  };
}

describe('content and cookies through the broker', () => {
  const pki = usePki({ brokers: ['b1'] });
  /** A core answering with the HTML notes application, and the broker's path to it. */
  const htmlPath = async (t: TestContext) => {
    const redis = testRedis(t);
    const { url, schema } = await useTestSchema(t);
    const core = await startCore(testCoreConfig(pki(), { url, schema }), silentLogger(), {
      application: htmlNotes,
    });
    t.after(() => core.close());
    return brokerPath(t, redis, core.address.port, pki());
  };

  test('a handler’s HTML and two cookies reach the reply, and its replay carries them unchanged', async (t) => {
    const path = await htmlPath(t);
    const envelope = makeEnvelope({
      ...notes.get(randomUUID()),
      replyTo: 'html-test',
      deadline: Date.now() + 20_000,
    });
    const first = await path.deliver(envelope);
    assert.equal(first.status, 200);
    assert.equal(first.body, null);
    assert.deepEqual(first.content, {
      type: 'text/html; charset=utf-8',
      base64: Buffer.from(page, 'utf8').toString('base64'),
    });
    assert.deepEqual(first.cookies, cookies);
    assert.equal(first.replayed, undefined);

    const again = await path.deliver(envelope);
    assert.equal(again.replayed, true);
    assert.deepEqual({ ...again, replayed: undefined }, { ...first, replayed: undefined });
  });

  test('an answer too large to carry becomes the broker’s 502 ANSWER_TOO_LARGE', async (t) => {
    const path = await htmlPath(t);
    const reply = await path.deliver(
      makeEnvelope({ ...notes.list(), replyTo: 'big-test', deadline: Date.now() + 20_000 }),
    );
    assert.equal(reply.status, 502);
    assert.equal((reply.body as { error: { code: string } }).error.code, 'NONSTOP_ERR_ANSWER_TOO_LARGE');
    assert.equal(reply.content, undefined);
  });

  test('an upstream application (config "upstreams", no JS application) answers through the broker', async (t) => {
    const redis = testRedis(t);
    const upstream = await startTestUpstream(t, (req, res) => {
      res.writeHead(201, {
        'content-type': 'text/html; charset=utf-8',
        'set-cookie': cookies,
        location: '/notes/1',
        'transfer-encoding': 'chunked',
      });
      res.end(page);
    });
    const { url, schema } = await useTestSchema(t);
    const config = testCoreConfig(
      pki(),
      { url, schema },
      {
        application: null,
        upstreams: [{ url: upstream.url, routes: ['notes.*'] }],
      },
    );
    const core = await startCore(config, silentLogger());
    t.after(() => core.close());
    const path = brokerPath(t, redis, core.address.port, pki());
    const envelope = makeEnvelope({
      ...notes.create({ title: 'via upstream' }),
      replyTo: 'up-test',
      deadline: Date.now() + 20_000,
    });
    const first = await path.deliver(envelope);
    assert.equal(first.status, 201);
    assert.equal(first.headers.location, '/notes/1');
    assert.equal(first.headers['transfer-encoding'], undefined);
    assert.equal(Buffer.from(first.content!.base64, 'base64').toString('utf8'), page);
    assert.deepEqual(first.cookies, cookies);
    // The broker validated the body and filled in the schema's defaults before the core sent it on.
    const got = upstream.received[0]!;
    assert.equal(got.method, 'POST');
    assert.equal(got.url, '/notes');
    assert.deepEqual(JSON.parse(got.body.toString()), {
      title: 'via upstream',
      text: '',
      priority: 'normal',
      tags: [],
    });

    const again = await path.deliver(envelope);
    assert.equal(again.replayed, true);
    assert.deepEqual(again.content, first.content);
    assert.deepEqual(again.cookies, first.cookies);
    assert.equal(upstream.calls(), 1, 'the redelivery was answered from the database');
  });
});
