// ACME challenge answers relayed between the gateways of one name, through real brokers (a cell
// per gateway, and one process for all) and each gateway's own Redis servers rendered as
// `nonstop redis-acl` renders them, every connection logged in as its ACL user.
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { ADMIN_USER, DEFAULT_WORKER_USER, gatewayUser } from '../../broker/redis-acl.js';
import type { ChallengeAnswer } from '../../gateway/acme/challenges.js';
import { RelayedChallengeStore } from '../../gateway/acme/relayed-challenges.js';
import { challengeInboxKey, challengeOutboxKey } from '../../lib/acme-relay.js';
import { silentLogger } from '../../lib/log.js';
import { startBroker } from '../../broker/broker.js';
import { validateConfig } from '../../config/load.js';
import { loadRoutes } from '../../config/routes.js';
import { brokerConfigDoc, startTestBroker, untilWorker } from '../helpers/broker.js';
import { startCli } from '../helpers/cli.js';
import { tempDir, writeJson } from '../helpers/files.js';
import { usePki, type TestPki } from '../helpers/pki.js';
import { useAclRedis, useRenderedRedis, type RenderedRedis } from '../helpers/redis-server.js';
import { until } from '../helpers/until.js';

const PREFIX = 'relay';
const LIMITS = {
  maxMemoryMb: 64,
  maxClients: 32,
  maxJobBytes: 1024 * 1024,
  idleTimeoutSeconds: 120,
  cpuWeight: 50,
  cpuQuotaPercent: null,
};
const SITE = 'www.example.net';
/** Who serves what: gwa and gwb the site, gwb also a name of its own, gwc another site. */
const SERVED: Record<string, string[]> = {
  gwa: [SITE, 'a.example.net'],
  gwb: [SITE, 'b.example.net'],
  gwc: ['other.example.org'],
};
const GATEWAYS = Object.keys(SERVED);
const POLL_MS = 100;

let tokens = 0;
function answer(type: ChallengeAnswer['type'], identifier: string, lifetimeMs = 120_000): ChallengeAnswer {
  const token = `tok${++tokens}_${Date.now().toString(36)}`;
  return {
    type,
    identifier,
    token,
    keyAuthorization: `${token}.${'Q'.repeat(43)}`,
    expiresAt: Date.now() + lifetimeMs,
  };
}

function brokerDoc(pki: TestPki, id: string, redis: RenderedRedis, extra: Record<string, unknown> = {}) {
  return brokerConfigDoc(pki, {
    id,
    prefix: PREFIX,
    corePort: 1,
    extra: {
      redis: { host: '127.0.0.1', port: 6379, prefix: PREFIX, username: DEFAULT_WORKER_USER },
      gateways: GATEWAYS.map((g) => {
        const server = redis.servers.get(g)!;
        return {
          id: g,
          names: SERVED[g],
          replyTimeoutMs: 60_000,
          redis: { port: server.port, passwordFile: server.passwordFiles[DEFAULT_WORKER_USER] },
        };
      }),
      ...extra,
    },
  });
}

/** A gateway's store over its Redis on each of `brokers`, logged in as the gateway's user. */
function store(
  t: TestContext,
  gatewayId: string,
  brokers: readonly RenderedRedis[],
  confirmTimeoutMs = 15_000,
): RelayedChallengeStore {
  const s = new RelayedChallengeStore({
    redis: brokers.map((r) => r.as(gatewayId, gatewayUser(gatewayId))),
    prefix: PREFIX,
    gatewayId,
    log: silentLogger(),
    pollMs: POLL_MS,
    confirmTimeoutMs,
  });
  s.start();
  t.after(() => s.close());
  return s;
}

const answerOf = (s: RelayedChallengeStore, a: ChallengeAnswer) =>
  a.type === 'http-01' ? s.httpAnswer(a.token) : s.tlsAlpnAnswer(a.identifier);

/** Everything of the relay in every gateway's Redis on `brokers`, as the admin sees it. */
async function relayKeys(brokers: readonly RenderedRedis[]): Promise<string[]> {
  const found: string[] = [];
  for (const r of brokers)
    for (const g of GATEWAYS) {
      const admin = r.as(g, ADMIN_USER);
      const outbox = await admin.get(challengeOutboxKey(PREFIX, g));
      if (outbox !== null) found.push(`${g} outbox: ${outbox}`);
      const inbox = await admin.hgetall(challengeInboxKey(PREFIX, g));
      for (const [source, text] of Object.entries(inbox)) found.push(`${g} inbox from ${source}: ${text}`);
      admin.disconnect();
    }
  return found;
}

describe('ACME challenge answers relayed between the gateways of a name', () => {
  const pki = usePki({ brokers: ['b1', 'b2'] });
  const b1 = useRenderedRedis(GATEWAYS, LIMITS, PREFIX);
  const b2 = useRenderedRedis(GATEWAYS, LIMITS, PREFIX);

  test('through `nonstop broker` cells: relayed to the gateways of the name only, withdrawn, expired', async (t) => {
    const file = writeJson(tempDir(t), 'broker.json', brokerDoc(pki(), 'b1', b1));
    const broker = startCli(['broker', '--config', file]);
    broker.stdin.end();
    broker.stdout.resume();
    broker.stderr.resume();
    t.after(() => broker.kill('SIGKILL'));
    for (const g of GATEWAYS) await untilWorker(b1.as(g, ADMIN_USER), PREFIX, g);
    const [a, b, c] = [store(t, 'gwa', [b1], 3000), store(t, 'gwb', [b1]), store(t, 'gwc', [b1])];

    // A name only gwb serves: gwa may not have gwb answer for it (that would get gwa gwb's
    // certificate). No broker relays it, so publish gives up waiting for it.
    const stolen = answer('http-01', 'b.example.net');
    const started = Date.now();
    await a.publish(stolen);
    assert.ok(Date.now() - started >= 3000, 'publish waited for a relay that never came');
    assert.equal(answerOf(b, stolen), undefined, 'not relayed');
    assert.ok(!(await relayKeys([b1])).some((k) => k.includes('inbox') && k.includes(stolen.token)));
    await a.withdraw(stolen);

    const http = answer('http-01', SITE);
    const tls = answer('tls-alpn-01', 'WWW.Example.NET');
    // Publish resolves once a broker relayed it.
    await a.publish(http);
    await a.publish(tls);
    assert.equal(a.httpAnswer(http.token), http.keyAuthorization, 'its own answer at once');
    const published = Date.now();
    await until(
      'gwb to answer both',
      () => answerOf(b, http) !== undefined && answerOf(b, tls) !== undefined,
      3000,
    );
    assert.ok(Date.now() - published < 3000);
    assert.equal(b.httpAnswer(http.token), http.keyAuthorization);
    assert.equal(b.tlsAlpnAnswer(SITE), tls.keyAuthorization);
    assert.equal(b.httpAnswer('random-token'), undefined);
    // gwc serves another name: nothing reaches its inbox.
    await c.poll();
    assert.equal(answerOf(c, http), undefined);
    assert.deepEqual(await b1.as('gwc', ADMIN_USER).hgetall(challengeInboxKey(PREFIX, 'gwc')), {});

    // Withdrawn: gone from gwb and from every inbox.
    await a.withdraw(http);
    await until('gwb to stop answering the withdrawn one', () => answerOf(b, http) === undefined, 3000);
    assert.equal(b.tlsAlpnAnswer(SITE), tls.keyAuthorization, 'the other one stays');
    assert.ok(!(await relayKeys([b1])).some((k) => k.includes(http.token)));

    // Expired: gone from the stores and from every Redis.
    await a.withdraw(tls);
    const short = answer('http-01', SITE, 2500);
    await a.publish(short);
    await until('gwb to answer the short one', () => answerOf(b, short) !== undefined, 3000);
    await until('its expiry', () => Date.now() > short.expiresAt, 4000);
    assert.equal(answerOf(b, short), undefined);
    assert.equal(answerOf(a, short), undefined);
    await until(
      'every Redis to be empty of it',
      async () => (await relayKeys([b1])).length === 0,
      2000,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await relayKeys([b1]))}`);
    });
  });

  test('two brokers in one process each: relayed by both, one broker is enough', async (t) => {
    const config = validateConfig('broker', 'b1.json', brokerDoc(pki(), 'b1', b1));
    const first = startBroker(config, loadRoutes(config.routes), silentLogger());
    let closed = false;
    t.after(() => (closed ? undefined : first.close()));
    const second = startTestBroker(t, brokerDoc(pki(), 'b2', b2));
    const [a, b] = [store(t, 'gwa', [b1, b2]), store(t, 'gwb', [b1, b2])];
    const one = answer('http-01', SITE);
    await a.publish(one);
    await until('gwb to answer', () => answerOf(b, one) !== undefined, 3000);
    // Both brokers relayed it, the same way.
    const inboxes = () =>
      Promise.all([b1, b2].map((r) => r.as('gwb', ADMIN_USER).hgetall(challengeInboxKey(PREFIX, 'gwb'))));
    await until('both inboxes', async () => (await inboxes()).every((i) => i.gwa !== undefined), 3000);
    const [in1, in2] = await inboxes();
    assert.deepEqual(Object.keys(in1!), ['gwa']);
    assert.deepEqual(in1, in2);

    closed = true;
    await first.close();
    const two = answer('tls-alpn-01', SITE);
    await a.publish(two);
    await until('gwb to answer through b2 alone', () => answerOf(b, two) !== undefined, 3000);
    assert.equal(b.httpAnswer(one.token), one.keyAuthorization);
    await a.withdraw(one);
    await a.withdraw(two);
    const inbox = challengeInboxKey(PREFIX, 'gwb');
    await until('withdrawn from b2', async () => (await b2.as('gwb', ADMIN_USER).exists(inbox)) === 0, 3000);
    // b1's broker is gone (in production its tunnel with it): what it relayed stays in its Redis
    // no longer than the answer lives.
    const left = b1.as('gwb', ADMIN_USER);
    const ttl = await left.pttl(inbox);
    assert.ok(
      ttl > 0 && ttl <= one.expiresAt - Date.now() + 50,
      `b1's leftover expires with the answer (${ttl} ms)`,
    );
    await left.del(inbox);

    // A forged outbox (the gateway's own key, written by hand): refused, counted, relayed nowhere.
    const forged = answer('http-01', 'b.example.net');
    await b2
      .as('gwa', gatewayUser('gwa'))
      .set(challengeOutboxKey(PREFIX, 'gwa'), JSON.stringify([forged, { junk: 1 }]));
    await until('the refusals counted', () => second.snapshot().acme?.gwa?.refused === 2, 3000);
    assert.equal(answerOf(b, forged), undefined);
    assert.equal(await b2.as('gwb', ADMIN_USER).exists(inbox), 0);
    // An outbox that is not even a string (its ACL lets the gateway make it a hash).
    const gwa = b2.as('gwa', gatewayUser('gwa'));
    await gwa.del(challengeOutboxKey(PREFIX, 'gwa'));
    await gwa.hset(challengeOutboxKey(PREFIX, 'gwa'), 'x', 'y');
    await until('that refusal counted', () => second.snapshot().acme?.gwa?.refused === 3, 3000);
    await gwa.del(challengeOutboxKey(PREFIX, 'gwa'));
  });
});

describe("the relay's keys under the ACL", () => {
  const ctx = useAclRedis({ prefix: PREFIX, gatewayIds: ['gwa', 'gwb'] });

  test("a gateway writes its outbox and reads its inbox, and touches nothing else of the relay's", async () => {
    const gw = ctx.as(gatewayUser('gwa'));
    const worker = ctx.as(DEFAULT_WORKER_USER);
    const own = { outbox: challengeOutboxKey(PREFIX, 'gwa'), inbox: challengeInboxKey(PREFIX, 'gwa') };
    const other = { outbox: challengeOutboxKey(PREFIX, 'gwb'), inbox: challengeInboxKey(PREFIX, 'gwb') };
    // What the real code sends.
    assert.equal(await gw.set(own.outbox, '[]', 'PXAT', Date.now() + 60_000), 'OK');
    assert.equal(await worker.getrange(own.outbox, 0, 32768), '[]');
    const written = await worker
      .multi()
      .hset(own.inbox, 'gwb', '[]')
      .pexpireat(own.inbox, Date.now() + 60_000, 'NX')
      .pexpireat(own.inbox, Date.now() + 60_000, 'GT')
      .exec();
    assert.deepEqual(
      written?.map(([e]) => e),
      [null, null, null],
    );
    assert.deepEqual(await gw.hgetall(own.inbox), { gwb: '[]' });
    assert.equal(await gw.del(own.outbox), 1);

    const attempts: [string, () => Promise<unknown>][] = [
      // Its own inbox: answers that look relayed would be its own doing only, but it cannot even that.
      ['write its own inbox', () => gw.hset(own.inbox, 'gwb', '[]')],
      ['delete its own inbox', () => gw.del(own.inbox)],
      ['replace its own inbox', () => gw.set(own.inbox, 'x')],
      ['persist its own inbox', () => gw.persist(own.inbox)],
      ["write gwb's inbox", () => gw.hset(other.inbox, 'gwa', '[]')],
      ["read gwb's inbox", () => gw.hgetall(other.inbox)],
      ["write gwb's outbox", () => gw.set(other.outbox, '[]')],
      ["read gwb's outbox", () => gw.get(other.outbox)],
    ];
    for (const [what, attempt] of attempts)
      await assert.rejects(attempt(), /NOPERM/, `${what} must be refused`);
    assert.equal(await worker.hdel(own.inbox, 'gwb'), 1);
  });
});
