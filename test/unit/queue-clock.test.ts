// The queue's clock (lib/queue-clock.ts): the offset from TIME round trips, and what is stamped.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { measureOffset, parseRedisTime, QueueClock } from '../../lib/queue-clock.js';
import type { Logger } from '../../lib/log.js';
import type { Redis } from '../../lib/redis.js';
import { makeEnvelope } from '../helpers/envelope.js';

test("TIME's reply is read as ms; anything else is refused", () => {
  assert.equal(parseRedisTime(['1764849600', '250000']), 1_764_849_600_250);
  for (const bad of [null, ['1'], ['x', '0'], ['1', '1000000'], ['-1', '0'], '1764849600'])
    assert.throws(() => parseRedisTime(bad), /TIME answered/);
});

test('the round trip that took least decides the offset, its server time taken as the midpoint', async () => {
  // Our clock reads `local`; the server's is 20 s ahead. Round trips of 40, 4 and 30 ms, the
  // server answering at their ends (the worst case), so the 4 ms one is off by 2 ms only.
  let local = 1_000_000;
  const trips = [40, 4, 30];
  let i = 0;
  const sample = await measureOffset(
    () => {
      local += trips[i++]!;
      const server = local + 20_000;
      return Promise.resolve([String(Math.floor(server / 1000)), String((server % 1000) * 1000)]);
    },
    () => local,
  );
  assert.deepEqual(sample, { offsetMs: 20_002, rttMs: 4 });
});

/** A Redis whose TIME is answered by `answer` (a clock of its own, or a refusal). */
function fakeRedis(answer: () => Promise<unknown>): Redis {
  const r = new EventEmitter() as EventEmitter & { status: string; call: (c: string) => Promise<unknown> };
  r.status = 'ready';
  r.call = answer;
  return r as unknown as Redis;
}
const lines: string[] = [];
const log = {
  info: (_o: unknown, m: string) => lines.push(`info ${m}`),
  warn: (_o: unknown, m: string) => lines.push(`warn ${m}`),
} as unknown as Logger;

test('an envelope is stamped in the queue clock; a refused TIME keeps ours, said once', async (t) => {
  const skewed = new QueueClock(
    fakeRedis(() => {
      const server = Date.now() - 20_000;
      return Promise.resolve([String(Math.floor(server / 1000)), String((server % 1000) * 1000)]);
    }),
    log,
  );
  t.after(() => skewed.close());
  assert.equal(skewed.settled, false);
  await skewed.measure();
  assert.equal(skewed.settled, true);
  assert.ok(Math.abs(skewed.offsetMs + 20_000) <= 2, `offset ${skewed.offsetMs}`);
  const envelope = makeEnvelope({ route: 'notes.list', method: 'GET', path: '/notes' });
  const stamped = skewed.stamp(envelope);
  assert.equal(stamped.receivedAt, envelope.receivedAt + skewed.offsetMs);
  assert.equal(stamped.deadline - stamped.receivedAt, envelope.deadline - envelope.receivedAt);
  assert.equal(skewed.toLocal(stamped.deadline), envelope.deadline);

  lines.length = 0;
  const refused = new QueueClock(
    fakeRedis(() =>
      Promise.reject(new Error("NOPERM User gw1 has no permissions to run the 'time' command")),
    ),
    log,
  );
  t.after(() => refused.close());
  await refused.measure();
  await refused.measure();
  assert.equal(refused.settled, true);
  assert.equal(refused.measured, false);
  assert.equal(refused.stamp(envelope), envelope);
  assert.equal(lines.filter((l) => l.includes('refuses TIME')).length, 1);
});
