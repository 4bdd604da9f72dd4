// The gateway's relayed challenge store over stand-in Redis connections: its own answers first,
// the relayed ones from memory, what the outbox carries (a shorter lifetime than the local one),
// what it keeps while a broker's Redis cannot be read, and how long publish waits.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { ChallengeAnswer } from '../../gateway/acme/challenges.js';
import {
  RelayedChallengeStore,
  type RelayedChallengeOptions,
} from '../../gateway/acme/relayed-challenges.js';
import {
  challengeInboxKey,
  challengeOutboxKey,
  CLOCK_SLACK_MS,
  MAX_ANSWER_LIFETIME_MS,
  type RelayedAnswer,
} from '../../lib/acme-relay.js';
import { silentLogger } from '../../lib/log.js';
import type { Redis } from '../../lib/redis.js';

/** Just what the store sends: HGETALL of its inbox, SET … PXAT and DEL of its outbox. */
class FakeRedis extends EventEmitter {
  readonly strings = new Map<string, { value: string; pxat: number }>();
  readonly hashes = new Map<string, Record<string, string>>();
  down = false;
  hgetall(key: string): Promise<Record<string, string>> {
    return this.down
      ? Promise.reject(new Error('connection lost'))
      : Promise.resolve(this.hashes.get(key) ?? {});
  }
  set(key: string, value: string, _px: 'PXAT', pxat: number): Promise<'OK'> {
    if (this.down) return Promise.reject(new Error('connection lost'));
    this.strings.set(key, { value, pxat });
    return Promise.resolve('OK');
  }
  del(key: string): Promise<number> {
    return Promise.resolve(this.strings.delete(key) ? 1 : 0);
  }
}

const NOW = 1_800_000_000_000;
const thumb = 'T'.repeat(43);
const mine = (token: string, over: Partial<ChallengeAnswer> = {}): ChallengeAnswer => ({
  type: 'http-01',
  identifier: 'www.example.net',
  token,
  keyAuthorization: `${token}.${thumb}`,
  expiresAt: NOW + 7 * 24 * 3600_000,
  ...over,
});

function setup(over: Partial<RelayedChallengeOptions> = {}) {
  let now = NOW;
  const redis = [new FakeRedis(), new FakeRedis()];
  const store = new RelayedChallengeStore({
    redis: redis as unknown as Redis[],
    prefix: 'p',
    gatewayId: 'gwb',
    log: silentLogger(),
    confirmTimeoutMs: 0,
    now: () => now,
    ...over,
  });
  const relay = (r: FakeRedis, source: string, answers: RelayedAnswer[]) =>
    r.hashes.set(challengeInboxKey('p', 'gwb'), {
      ...r.hashes.get(challengeInboxKey('p', 'gwb')),
      [source]: JSON.stringify(answers),
    });
  return { store, redis, relay, advance: (ms: number) => (now += ms) };
}

test('its own answer goes to every outbox with the relay lifetime, and is answered from memory', async () => {
  const { store, redis } = setup();
  await store.publish(mine('own'));
  for (const r of redis) {
    const out = r.strings.get(challengeOutboxKey('p', 'gwb'))!;
    const expiresAt = NOW + MAX_ANSWER_LIFETIME_MS - CLOCK_SLACK_MS;
    assert.equal(out.pxat, expiresAt);
    assert.deepEqual(JSON.parse(out.value), [{ ...mine('own'), expiresAt }]);
  }
  assert.equal(store.httpAnswer('own'), `own.${thumb}`);
  await store.withdraw(mine('own'));
  assert.equal(store.httpAnswer('own'), undefined);
  assert.equal(redis[0]!.strings.size, 0, 'the last one withdrawn: the outbox is deleted');
});

test('relayed answers are served after a poll, its own first, each until it expires', async () => {
  const { store, redis, relay, advance } = setup();
  relay(redis[0]!, 'gwa', [
    {
      type: 'http-01',
      identifier: 'www.example.net',
      token: 'ta',
      keyAuthorization: `ta.${thumb}`,
      expiresAt: NOW + 1000,
    },
    {
      type: 'tls-alpn-01',
      identifier: 'www.example.net',
      token: 'tt',
      keyAuthorization: `tt.${thumb}`,
      expiresAt: NOW + 5000,
    },
  ]);
  assert.equal(store.httpAnswer('ta'), undefined, 'nothing before a poll: lookups never read Redis');
  await store.poll();
  assert.equal(store.httpAnswer('ta'), `ta.${thumb}`);
  assert.equal(store.tlsAlpnAnswer('WWW.EXAMPLE.NET'), `tt.${thumb}`);
  await store.publish(mine('own-tls', { type: 'tls-alpn-01' }));
  assert.equal(store.tlsAlpnAnswer('www.example.net'), `own-tls.${thumb}`, 'its own order first');
  advance(1000);
  assert.equal(store.httpAnswer('ta'), undefined, 'expired, even before the next poll');
});

test("a broker's Redis that cannot be read keeps what it relayed; the other's adds to it", async () => {
  const { store, redis, relay } = setup();
  const a = (token: string): RelayedAnswer => ({
    type: 'http-01',
    identifier: 'www.example.net',
    token,
    keyAuthorization: `${token}.${thumb}`,
    expiresAt: NOW + 60_000,
  });
  relay(redis[0]!, 'gwa', [a('one')]);
  await store.poll();
  redis[0]!.down = true;
  relay(redis[1]!, 'gwa', [a('two')]);
  await store.poll();
  assert.equal(store.httpAnswer('one'), `one.${thumb}`);
  assert.equal(store.httpAnswer('two'), `two.${thumb}`);
  // A malformed inbox field (only brokers write it, but still) is skipped.
  redis[1]!.hashes.set(challengeInboxKey('p', 'gwb'), {
    gwa: '{nope',
    gwc: JSON.stringify([{ token: 'x' }]),
  });
  await store.poll();
  assert.equal(store.httpAnswer('two'), undefined);
  assert.equal(store.httpAnswer('x'), undefined);
});

test('publish resolves settleMs after its answer shows relayed (the others have read theirs); at once at close', async () => {
  const { store, redis, relay } = setup({ confirmTimeoutMs: 5000, settleMs: 300 });
  const relayed = (a: ChallengeAnswer) => {
    relay(redis[0]!, 'gwb', [{ ...a, expiresAt: NOW + MAX_ANSWER_LIFETIME_MS - CLOCK_SLACK_MS }]);
    return store.poll();
  };
  const first = mine('settle');
  await relayed(first);
  let started = Date.now();
  await store.publish(first);
  const took = Date.now() - started;
  assert.ok(took >= 290 && took < 2000, `publish took ${took} ms`);

  const second = mine('closing');
  await relayed(second);
  started = Date.now();
  const publishing = store.publish(second);
  setTimeout(() => store.close(), 50);
  await publishing;
  assert.ok(Date.now() - started < 250, 'close ends the wait');
});
