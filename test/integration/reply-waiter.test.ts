// A gateway's reply read over a link that dies with replies on their way: the tunnel between a
// gateway and a broker's Redis dropped under traffic. The replies Redis had sent when the link
// died are read again on the next connection, none is lost, and each is delivered once.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReplyWaiter } from '../../gateway/reply-waiter.js';
import { REPLY_FIELD, replyKey, type Reply } from '../../lib/envelope.js';
import { createRedis } from '../../lib/redis.js';
import { captureLogger } from '../helpers/log.js';
import { addReply } from '../helpers/replies.js';
import { REDIS_HOST, REDIS_PORT, testRedis } from '../helpers/redis.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { until } from '../helpers/until.js';

const reply = (id: string): Reply => ({ id, status: 201, headers: {}, body: { id } });

/** A gateway process's reply reader on `key`, over a connection to `host:port`, running. */
async function startWaiter(t: TestContext, host: string, port: number, prefix: string, key: string) {
  const log = captureLogger();
  const connection = createRedis({ host, port, prefix }, 'blocking', 'test-replies', log.logger, {
    readyCheck: false,
  });
  const waiter = new ReplyWaiter(connection, key, log.logger);
  t.after(() => waiter.close());
  waiter.start();
  await until('the reply connection is ready', () => connection.status === 'ready', 5000);
  return { waiter, log };
}

test('replies sent while the link died are read again on the next connection, each once', async (t) => {
  const redis = testRedis(t);
  const proxy = await startTcpProxy({ host: REDIS_HOST, port: REDIS_PORT });
  t.after(() => proxy.cut());
  const key = replyKey(redis.prefix, 'gw1', 'process-1');
  const { waiter } = await startWaiter(t, '127.0.0.1', proxy.port, redis.prefix, key);

  // One reply through a healthy link first: the read works at all.
  const firstId = randomUUID();
  const first = waiter.wait(firstId, 10_000);
  await addReply(redis.client, key, reply(firstId));
  assert.equal((await first)?.id, firstId);

  // The link dies with a batch on its way: Redis answers the blocked read, the answer is lost.
  const ids = Array.from({ length: 5 }, () => randomUUID());
  const waits = ids.map((id) => waiter.wait(id, 15_000));
  proxy.swallowAnswers();
  for (const id of ids) await addReply(redis.client, key, reply(id));
  await until('Redis sent the batch', () => proxy.swallowedBytes > 0, 5000);
  await sleep(200);
  // Redis sent it; it is still in the stream, and no waiter has it.
  assert.equal(await redis.client.xlen(key), ids.length);
  assert.equal(waiter.pending, ids.length);
  proxy.reset();

  const delivered = await Promise.all(waits);
  assert.deepEqual(
    delivered.map((r) => r?.id),
    ids,
    'every reply of the swallowed batch arrived after the reconnect',
  );
  // Delivered replies are trimmed in front of the next read: the stream empties.
  await until('the delivered replies are trimmed', async () => (await redis.client.xlen(key)) === 0, 5000);

  // A duplicate of a delivered reply (a broker that retried its write) finds no waiter.
  await redis.client.xadd(key, '*', REPLY_FIELD, JSON.stringify(reply(firstId)));
  await until('the duplicate is read and trimmed', async () => (await redis.client.xlen(key)) === 0, 5000);
  assert.equal(waiter.pending, 0);
});

test('a malformed entry is skipped with a log line and the replies behind it arrive', async (t) => {
  const redis = testRedis(t);
  const key = replyKey(redis.prefix, 'gw1', 'process-2');
  const { waiter, log } = await startWaiter(t, REDIS_HOST, REDIS_PORT, redis.prefix, key);
  const nextId = randomUUID();
  const next = waiter.wait(nextId, 10_000);
  await redis.client.xadd(key, '*', REPLY_FIELD, 'not json');
  await redis.client.xadd(key, '*', 'other-field', '{}');
  await addReply(redis.client, key, reply(nextId));
  assert.equal((await next)?.id, nextId);
  assert.equal(log.lines().filter((l) => l.msg === 'discarded a malformed reply').length, 2);
});
