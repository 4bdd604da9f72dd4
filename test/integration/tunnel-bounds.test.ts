// A compromised gateway's sshd against the broker's tunnel: it may open channels without end
// and send data past the window the broker gave it. Only `maxChannels` channels become Redis
// connections (the rest are refused, with one log line per burst), a channel that overshoots
// its window is closed and its data dropped (the broker's heap does not grow by it), a
// connection that keeps doing so is dropped, and the broker goes on serving throughout.
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Knocker } from '../../broker/knocker.js';
import { GatewayTunnel } from '../../broker/tunnel.js';
import { tempDir } from '../helpers/files.js';
import { startHostileGateway, type HostileGateway } from '../helpers/hostile-gateway.js';
import { captureLogger } from '../helpers/log.js';
import { freePort } from '../../lib/free-port.js';
import { until } from '../helpers/until.js';

const noKnock: Knocker = { knock: (host) => Promise.resolve(host) };
const MiB = 1024 * 1024;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A reply without end, written as fast as the broker takes it (one buffer, written again). */
async function flood(socket: Socket): Promise<void> {
  const data = Buffer.alloc(64 * 1024, 0x2d);
  while (!socket.destroyed) {
    if (!socket.write(data)) await new Promise((r) => socket.once('drain', r).once('close', r));
  }
}

/** Heap and Buffer memory once what is in flight has landed and the garbage is collected. */
async function settledMemory(): Promise<number> {
  await new Promise((r) => setTimeout(r, 500));
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** A stand-in for the broker side's Redis: counts connections; answers PING, or reads nothing. */
async function fakeRedis(t: TestContext, mode: 'answer' | 'stall' | 'flood') {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (mode === 'stall') socket.pause();
    else if (mode === 'flood') void flood(socket);
    else socket.on('data', () => socket.write('+PONG\r\n'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  const address = server.address() as { port: number };
  return {
    target: { host: '127.0.0.1', port: address.port },
    get connections() {
      return connections;
    },
    get open() {
      return sockets.size;
    },
  };
}

function tunnelTo(
  t: TestContext,
  gw: HostileGateway,
  target: { host: string; port: number },
  maxChannels: number,
) {
  const log = captureLogger('info');
  // A variable, not a literal: the same test compiles against a TunnelOptions without the cap.
  const options = {
    connectTimeoutMs: 5000,
    keepaliveIntervalMs: 5000,
    keepaliveCountMax: 3,
    backoffInitialMs: 50,
    backoffMaxMs: 200,
    drainMs: 0,
    maxChannels,
    channelOpensPerSecond: 50,
    channelOpenBurst: 100,
    messagesPerSecond: 20000,
    messageBurst: 40000,
  };
  const tunnel = new GatewayTunnel('gw1', gw.ssh, target, options, noKnock, log.logger);
  tunnel.start();
  t.after(() => tunnel.close());
  return { tunnel, log };
}

/** One request through a forwarded channel and its answer from the fake Redis. */
async function ping(gw: HostileGateway): Promise<string> {
  const channel = await gw.openChannel(await gw.session());
  const answer = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer through the tunnel')), 5000);
    channel.once('data', (d: Buffer) => {
      clearTimeout(timer);
      resolve(d.toString());
    });
    channel.write('PING\r\n');
  });
  channel.close();
  return answer;
}

test('channels beyond maxChannels are refused, logged once per burst; the tunnel keeps serving', async (t) => {
  const gw = await startHostileGateway(t, tempDir(t));
  const redis = await fakeRedis(t, 'answer');
  const { log } = tunnelTo(t, gw, redis.target, 8);
  const session = await gw.session();

  const outcomes = await Promise.allSettled(Array.from({ length: 60 }, () => gw.openChannel(session)));
  const accepted = outcomes.filter((o) => o.status === 'fulfilled');
  assert.equal(accepted.length, 8, 'exactly maxChannels channels are accepted');
  await until('the accepted channels to reach Redis', () => redis.connections >= 8);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(redis.connections, 8, 'only maxChannels Redis connections');
  const refusals = log.lines().filter((l) => /refus/.test(String(l.msg)));
  assert.equal(refusals.length, 1, `one log line for the burst, not one per channel: ${log.text()}`);
  assert.equal(refusals[0]!.level, 40);

  // Slots come back as channels close; the same connection serves again.
  for (const o of accepted) o.value.close();
  await until('the closed channels to free their Redis connections', () => redis.open === 0);
  assert.equal(await ping(gw), '+PONG\r\n');
  assert.equal(gw.connections, 1, 'no reconnect was needed');
});

test('a channel that overshoots its window is closed and its data dropped; the heap stays put', async (t) => {
  const gw = await startHostileGateway(t, tempDir(t));
  // A Redis that reads nothing: what the gateway sends piles up on the broker, if anywhere.
  const redis = await fakeRedis(t, 'stall');
  const { tunnel } = tunnelTo(t, gw, redis.target, 8);
  const session = await gw.session();
  const channel = await gw.openChannel(session);
  await until('the channel to reach Redis', () => redis.connections === 1);

  const before = await settledMemory();
  const overshoot = 96 * MiB;
  const sent = await gw.overshoot(channel, overshoot);
  await until('the channel to be gone on the broker side', () => tunnel.status().channels === 0).catch(
    () => {},
  );
  const after = await settledMemory();
  const grown = after - before;
  t.diagnostic(`sent ${(sent / MiB).toFixed(1)} MiB, broker memory grew ${(grown / MiB).toFixed(1)} MiB`);
  assert.ok(grown < 16 * MiB, `memory grew by ${(grown / MiB).toFixed(1)} MiB`);
  assert.ok(sent < overshoot, 'the broker closed the channel before the gateway was done sending');
  assert.equal(tunnel.status().channels, 0);
  assert.equal(tunnel.status().refused, 1);
  assert.equal(session.closed, false, 'one overshoot closes the channel, not the connection');
});

test('a connection that keeps overshooting is dropped, and the broker reconnects', async (t) => {
  const gw = await startHostileGateway(t, tempDir(t));
  const redis = await fakeRedis(t, 'stall');
  tunnelTo(t, gw, redis.target, 8);
  const session = await gw.session();
  for (let i = 0; i < 3 && !session.closed; i++) {
    const channel = await gw.openChannel(session).catch(() => undefined);
    if (channel !== undefined) await gw.overshoot(channel, 8 * MiB);
  }
  await Promise.race([
    session.whenClosed,
    new Promise((_, reject) => setTimeout(() => reject(new Error('the connection was not dropped')), 5000)),
  ]);
  const next = await gw.session();
  assert.notEqual(next, session);
  assert.equal(gw.connections, 2);
});

test('a slow Redis holds back an honest gateway: ssh2 widens the window only as Redis reads', async (t) => {
  const gw = await startHostileGateway(t, tempDir(t));
  const redis = await fakeRedis(t, 'stall');
  const { tunnel } = tunnelTo(t, gw, redis.target, 8);
  const channel = await gw.openChannel(await gw.session());
  await until('the channel to reach Redis', () => redis.connections === 1);

  const before = await settledMemory();
  const sent = await gw.sendWithinWindow(channel, 64 * MiB);
  const after = await settledMemory();
  t.diagnostic(
    `offered ${(sent / MiB).toFixed(1)} MiB, broker memory grew ${((after - before) / MiB).toFixed(1)} MiB`,
  );
  assert.ok(sent < 32 * MiB, `the gateway was held back (${(sent / MiB).toFixed(1)} MiB)`);
  assert.ok(after - before < 16 * MiB, `memory grew by ${((after - before) / MiB).toFixed(1)} MiB`);
  assert.equal(tunnel.status().channels, 1, 'an honest gateway keeps its channel');
  assert.equal(tunnel.status().refused, 0);
});

test('a gateway that stops reading makes the broker hold at most ~320 KiB per channel of Redis replies', async (t) => {
  const gw = await startHostileGateway(t, tempDir(t));
  const redis = await fakeRedis(t, 'flood');
  const { tunnel } = tunnelTo(t, gw, redis.target, 16);
  const session = await gw.session();
  const before = await settledMemory();
  for (let i = 0; i < 16; i++) gw.withholdWindow(await gw.openChannel(session));
  await until('every channel to reach Redis', () => redis.connections === 16);
  const after = await settledMemory();
  const grown = after - before;
  t.diagnostic(`16 channels, broker memory grew ${(grown / MiB).toFixed(1)} MiB`);
  // ssh2's own high-water mark would let each hold 2 MiB (32 MiB here).
  assert.ok(grown < 12 * MiB, `memory grew by ${(grown / MiB).toFixed(1)} MiB`);
  assert.equal(tunnel.status().channels, 16);
});

test('with Redis down, channel after channel fails with one warning, not one per channel', async (t) => {
  const gw = await startHostileGateway(t, tempDir(t));
  const { tunnel, log } = tunnelTo(t, gw, { host: '127.0.0.1', port: await freePort() }, 8);
  const session = await gw.session();
  for (let i = 0; i < 20; i++) {
    const channel = await gw.openChannel(session);
    channel.resume();
    await new Promise((r) => channel.once('close', r));
  }
  const warned = log.lines().filter((l) => l.msg === 'redis unreachable for a tunnelled connection');
  assert.equal(warned.length, 1, log.text());
  await until('every slot to be free again', () => tunnel.status().channels === 0);
  assert.equal(tunnel.status().forwarded, 20);
});
