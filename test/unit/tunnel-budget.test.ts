// The token buckets behind a tunnel's budget, on a clock the test moves; and the guard that
// refuses to run a tunnel when ssh2's internals are not the ones the budget hooks into.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import ssh2 from 'ssh2';
import {
  budgetWarnings,
  REKEY_MESSAGES,
  TokenBucket,
  TunnelBudget,
  tunnelBuckets,
} from '../../broker/tunnel-budget.js';
import { captureLogger } from '../helpers/log.js';

function clock() {
  let now = 1000;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

test('a bucket starts full, refills at its rate and never above its burst', () => {
  const c = clock();
  const b = new TokenBucket(10, 5, c.now);
  assert.equal(b.tokens, 5);
  for (let i = 0; i < 5; i++) b.take();
  assert.equal(b.tokens, 0);
  c.advance(100);
  assert.equal(b.tokens, 1);
  c.advance(10_000);
  assert.equal(b.tokens, 5, 'capped at the burst');
});

test('a bucket runs into debt and is paid back over time: the rate holds', () => {
  const c = clock();
  const b = new TokenBucket(10, 5, c.now);
  b.take(25); // what was already read and decrypted is processed
  assert.equal(b.tokens, -20);
  // Back to one token: 21 tokens at 10 a second.
  assert.equal(b.msUntil(1), 2100);
  c.advance(2000);
  assert.ok(Math.abs(b.tokens - 0) < 1e-9);
  assert.ok(Math.abs(b.msUntil(1) - 100) < 1e-6);
  c.advance(100);
  assert.equal(b.msUntil(1), 0);
  // A level above the burst is never waited for beyond the burst.
  assert.ok(Math.abs(b.msUntil(50) - 400) < 1e-6);
});

test('over a long run a bucket passes rate × time + burst, whatever the demand', () => {
  const c = clock();
  const b = new TokenBucket(50, 100, c.now);
  let passed = 0;
  for (let ms = 0; ms < 10_000; ms++) {
    // Demand of 1000 a second, each taken only when a token is there.
    while (b.tokens >= 1) {
      b.take();
      passed++;
    }
    c.advance(1);
  }
  assert.ok(passed <= 100 + 50 * 10 + 1 && passed >= 100 + 50 * 10 - 1, `passed ${passed}`);
});

test('a pause waits for 50 ms of refill, at least one token, at most the burst', () => {
  assert.equal(new TokenBucket(50, 100).resumeLevel, 2.5);
  assert.equal(new TokenBucket(5, 5).resumeLevel, 1);
  assert.equal(new TokenBucket(20000, 40000).resumeLevel, 1000);
  assert.equal(new TokenBucket(100000, 10).resumeLevel, 10);
});

test('a bucket without a rate or a burst is refused', () => {
  assert.throws(() => new TokenBucket(0, 5), RangeError);
  assert.throws(() => new TokenBucket(5, 0), RangeError);
  assert.throws(() => new TokenBucket(Number.NaN, 5), RangeError);
});

const options = {
  channelOpensPerSecond: 50,
  channelOpenBurst: 100,
  messagesPerSecond: 20000,
  messageBurst: 40000,
};

test('the budget refuses to run on an ssh2 whose internals are not the ones it hooks', () => {
  const warnings = budgetWarnings(captureLogger().logger);
  const unconnected = new ssh2.Client();
  assert.throws(
    () => new TunnelBudget(unconnected, tunnelBuckets(options), warnings).guard(),
    /ssh2 internals changed/,
  );
  // A protocol without the per-message hook, or with parse already replaced on the instance.
  for (const protocol of [
    { parse() {}, _handlers: { CHANNEL_OPEN() {} } },
    Object.assign(Object.create({ parse() {} }) as object, { _onPacket() {}, _handlers: {} }),
    { parse() {}, _onPacket() {}, _handlers: { CHANNEL_OPEN() {} } },
  ]) {
    const client = { _protocol: protocol, _sock: { pause() {}, unshift() {} } } as unknown as ssh2.Client;
    assert.throws(
      () => new TunnelBudget(client, tunnelBuckets(options), warnings).guard(),
      /ssh2 internals changed/,
    );
  }
});

test('the budget hooks a real ssh2 client, and verify() fails while no message went through it', () => {
  const warnings = budgetWarnings(captureLogger().logger);
  const client = new ssh2.Client();
  client.on('error', () => {});
  // Nothing listens on port 1: connect() builds the protocol and the socket, then fails.
  client.connect({ host: '127.0.0.1', port: 1, username: 'x' });
  const budget = new TunnelBudget(client, tunnelBuckets(options), warnings);
  budget.guard();
  assert.throws(() => budget.verify(), /saw none of the SSH messages/);
  budget.stop();
  client.destroy();
});

/**
 * A stand-in for ssh2's protocol on a real socket pair, wired as ssh2 wires it (the socket's
 * 'data' listener calls `parse` on the instance): every 16 bytes is one message, and a message
 * that starts with 'O' is a channel open. Records what it parsed, in order.
 */
async function fakeConnection(t: import('node:test').TestContext) {
  const { createServer, connect } = await import('node:net');
  let peer: import('node:net').Socket | undefined;
  const server = createServer((s) => (peer = s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sock = connect((server.address() as { port: number }).port, '127.0.0.1');
  await new Promise<void>((r) => sock.once('connect', r));
  while (peer === undefined) await new Promise((r) => setImmediate(r));
  t.after(() => {
    sock.destroy();
    peer?.destroy();
    server.close();
  });
  const parsed: Buffer[] = [];
  let pending = Buffer.alloc(0);
  class Protocol {
    _handlers = { CHANNEL_OPEN: (): void => {} };
    _onPacket(): void {}
    parse(chunk: Buffer, start: number, end: number): void {
      parsed.push(Buffer.from(chunk.subarray(start, end)));
      pending = Buffer.concat([pending, chunk.subarray(start, end)]);
      while (pending.length >= 16) {
        const message = pending.subarray(0, 16);
        pending = pending.subarray(16);
        this._onPacket();
        if (message[0] === 0x4f) this._handlers.CHANNEL_OPEN();
      }
    }
  }
  const protocol = new Protocol();
  sock.on('data', (d: Buffer) => protocol.parse(d, 0, d.length));
  const { EventEmitter } = await import('node:events');
  const client = Object.assign(new EventEmitter(), {
    _protocol: protocol,
    _sock: sock,
  }) as unknown as ssh2.Client;
  return { client, peer: peer, parsed: () => Buffer.concat(parsed) };
}

test('over budget the socket is not read; what was read waits unparsed and comes back in order', async (t) => {
  const { client, peer, parsed } = await fakeConnection(t);
  const log = captureLogger();
  const budget = new TunnelBudget(
    client,
    tunnelBuckets({ ...options, messagesPerSecond: 10000, messageBurst: 100 }),
    budgetWarnings(log.logger),
  );
  budget.guard();
  // 4096 messages of 16 bytes, each numbered: 100 at once, then 10000 a second.
  const sent = Buffer.alloc(4096 * 16);
  for (let i = 0; i < 4096; i++) sent.writeUInt32BE(i, i * 16 + 4);
  const started = performance.now();
  peer.write(sent);
  while (parsed().length < sent.length && performance.now() - started < 5000) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const ms = performance.now() - started;
  assert.ok(parsed().equals(sent), 'every byte parsed once, in order');
  assert.ok(ms >= ((4096 - 100) / 10000) * 1000 * 0.9, `parsed in ${ms.toFixed(0)} ms`);
  assert.ok(budget.throttled >= 1 && budget.pausedMs > 0);
  budget.verify();
  const warned = log.lines().filter((l) => /over its budget of SSH messages/.test(String(l.msg)));
  assert.equal(warned.length, 1, log.text());
  budget.stop();
});

test('channel opens are paid for one by one', async (t) => {
  const { client, peer, parsed } = await fakeConnection(t);
  const budget = new TunnelBudget(
    client,
    tunnelBuckets({ ...options, channelOpensPerSecond: 100, channelOpenBurst: 10 }),
    budgetWarnings(captureLogger().logger),
  );
  budget.guard();
  const opens = Buffer.alloc(200 * 16, 0x4f);
  peer.write(opens);
  await new Promise((r) => setTimeout(r, 300));
  // 10 at once and 100 a second: about 40 in 300 ms, never all 200.
  const n = parsed().length / 16;
  assert.ok(n >= 20 && n <= 50, `${n} opens parsed in 300 ms`);
  assert.ok(budget.paused);
  budget.stop();
});

test('every key exchange after the first costs REKEY_MESSAGES of the message budget', async (t) => {
  const { client } = await fakeConnection(t);
  const budget = new TunnelBudget(client, tunnelBuckets(options), budgetWarnings(captureLogger().logger));
  budget.guard();
  const full = budget.messages.tokens;
  client.emit('handshake', {});
  assert.ok(Math.abs(budget.messages.tokens - full) < 1, 'the first key exchange is the connection itself');
  client.emit('handshake', {});
  client.emit('handshake', {});
  assert.ok(budget.messages.tokens <= full - 2 * REKEY_MESSAGES + 1);
  assert.equal(budget.keyExchanges, 3);
  budget.stop();
});

test('closing a paused connection destroys its socket at once instead of draining it at the budget', async (t) => {
  const { client, peer } = await fakeConnection(t);
  const sock = (client as unknown as { _sock: import('node:net').Socket })._sock;
  const budget = new TunnelBudget(
    client,
    tunnelBuckets({ ...options, channelOpensPerSecond: 1, channelOpenBurst: 1 }),
    budgetWarnings(captureLogger().logger),
  );
  budget.guard();
  peer.write(Buffer.alloc(100 * 16, 0x4f));
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(budget.paused);
  budget.closing();
  assert.ok(sock.destroyed);
  budget.stop();
});
