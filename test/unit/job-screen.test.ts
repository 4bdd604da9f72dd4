import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { SCREENED_OPTS, screenJob } from '../../broker/job-screen.js';

const LIMITS = { maxDataBytes: 4096 };

/** A job hash as HGETALL returns it after moveToActive took it, with `over` laid on top. */
function hash(id: string, over: Record<string, string | Buffer> = {}): Buffer[] {
  const fields: Record<string, string | Buffer> = {
    name: 'notes.create',
    data: JSON.stringify({ v: 1, id }),
    opts: JSON.stringify({ jobId: id, removeOnComplete: true, removeOnFail: true, attempts: 1 }),
    delay: '0',
    priority: '0',
    timestamp: '1796000000000',
    processedOn: '1796000000100',
    ats: '1',
    ...over,
  };
  return Object.entries(fields).flatMap(([k, v]) => [
    Buffer.from(k),
    Buffer.isBuffer(v) ? v : Buffer.from(v),
  ]);
}

const asObject = (flat: readonly string[]): Record<string, string | undefined> =>
  Object.fromEntries(Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i]!, flat[2 * i + 1]!]));

test("a real gateway's job passes, with fixed options and nothing BullMQ would act on", () => {
  const id = randomUUID();
  const screened = screenJob(id, hash(id), LIMITS);
  assert.equal(screened.refusal, undefined);
  assert.deepEqual(screened.strip, []);
  const job = asObject(screened.fields);
  assert.equal(job.name, 'notes.create');
  assert.equal(job.data, JSON.stringify({ v: 1, id }));
  assert.equal(job.opts, SCREENED_OPTS);
  assert.deepEqual(JSON.parse(SCREENED_OPTS), { attempts: 1, removeOnComplete: true, removeOnFail: true });
  assert.equal(job.ats, '1');
  // Strings (a connection without Buffer replies) are screened alike.
  assert.equal(screenJob(id, hash(id).map(String), LIMITS).refusal, undefined);
});

test('fields a BullMQ script acts on are stripped, named schedulers removed, and the job refused', () => {
  const id = randomUUID();
  const screened = screenJob(
    id,
    hash(id, { rjk: 'gen', parentKey: 'p:x', parent: '{"id":"x","queueKey":"p"}', deid: 'd' }),
    LIMITS,
  );
  assert.deepEqual(screened.strip.sort(), ['deid', 'parent', 'parentKey', 'rjk']);
  assert.equal(screened.scheduler, 'gen');
  assert.match(screened.refusal ?? '', /forged job fields/);
  const job = asObject(screened.fields);
  for (const f of ['rjk', 'parentKey', 'parent', 'deid']) assert.equal(job[f], undefined, f);
  assert.equal(job.data, 'null', 'a refused job carries no data');
});

test('options no real gateway sets are refused', () => {
  const id = randomUUID();
  for (const opts of [
    { jobId: id, delay: 10 },
    { jobId: id, priority: 3 },
    { jobId: id, repeat: { every: 50 } },
    { jobId: id, attempts: 50, backoff: { type: 'fixed', delay: 10 } },
    { jobId: id, removeOnComplete: false },
    { jobId: id, de: { id: 'x' } },
    { jobId: id, parent: { id: 'x', queue: 'q' } },
    { jobId: 'another id' },
    JSON.parse('{"__proto__":{"polluted":1}}') as Record<string, unknown>,
  ]) {
    const screened = screenJob(id, hash(id, { opts: JSON.stringify(opts) }), LIMITS);
    assert.match(screened.refusal ?? '', /option/, JSON.stringify(opts));
  }
  for (const over of [
    { delay: '10' },
    { priority: '1' },
    { opts: '[1]' },
    { opts: 'nope' },
    { timestamp: 'x' },
  ] as Record<string, string>[]) {
    assert.ok(screenJob(id, hash(id, over), LIMITS).refusal, JSON.stringify(over));
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('oversized values are refused without being decoded', () => {
  const id = randomUUID();
  /** A value whose every decoding throws: screening may only look at its length. */
  const unreadable = (bytes: number) => {
    const b = Buffer.alloc(bytes, 0x61);
    b.toString = () => assert.fail('an oversized value was decoded');
    return b;
  };
  for (const [what, over, pattern] of [
    ['name', { name: unreadable(50 << 20) }, /name of 52428800 bytes/],
    ['data', { data: unreadable(LIMITS.maxDataBytes + 1) }, /data of 4097 bytes/],
    ['options', { opts: unreadable(4096) }, /opts of 4096 bytes/],
    ['a field name', { ['f'.repeat(1 << 20)]: '1' }, /a field name of 1048576 bytes/],
  ] as const) {
    const screened = screenJob(id, hash(id, over), LIMITS);
    assert.match(screened.refusal ?? '', pattern, what);
    assert.ok(
      screened.fields.every((f) => f.length < 1024),
      `${what}: nothing large is handed on`,
    );
  }
  const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x${i}`, '1']));
  assert.match(screenJob(id, hash(id, many), LIMITS).refusal ?? '', /fields/);
  assert.match(screenJob('i'.repeat(200), hash(id), LIMITS).refusal ?? '', /a job id of 200 bytes/);
});

test('data that is missing or not JSON, and unknown fields, are refused', () => {
  const id = randomUUID();
  assert.match(screenJob(id, hash(id, { data: '{not json' }), LIMITS).refusal ?? '', /not JSON/);
  assert.match(
    screenJob(id, hash(id, { stray: '1' }), LIMITS).refusal ?? '',
    /"stray", which no gateway writes/,
  );
  const noData = hash(id);
  noData.splice(
    noData.findIndex((b) => b.toString() === 'data'),
    2,
  );
  assert.match(screenJob(id, noData, LIMITS).refusal ?? '', /no data/);
});
