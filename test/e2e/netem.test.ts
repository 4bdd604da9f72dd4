// world/netem.ts on two hosts of the public segment: the delay and loss it promises are what
// ping measures, a blackout passes nothing, and removing it gives the plain link back.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BLACKOUT, WanFault } from '../../world/netem.js';
import { World, worldSkipReason, type Host } from '../../world/world.js';

interface Ping {
  readonly received: number;
  readonly avgMs: number;
  readonly mdevMs: number;
  /** Replies that came back after a later probe's reply. */
  readonly outOfOrder: number;
}

// No ping(8) on the machine: UDP probes 20 ms apart to an echo server in the other host.
const ECHO = `const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(m, r.port, r.address));
s.bind(7007, () => console.log('echo'));`;
const PROBE = `const [host, count] = process.argv.slice(1);
const s = require('node:dgram').createSocket('udp4');
const sent = new Map(), rtts = [];
let last = -1, outOfOrder = 0;
s.on('message', (m) => {
  const i = m.readUInt32BE(0);
  if (!sent.has(i)) return;
  rtts.push(performance.now() - sent.get(i));
  sent.delete(i);
  if (i < last) outOfOrder++;
  last = Math.max(last, i);
});
let i = 0;
const t = setInterval(() => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(i);
  sent.set(i++, performance.now());
  s.send(b, 7007, host);
  if (i === Number(count)) {
    clearInterval(t);
    setTimeout(() => {
      const avg = rtts.reduce((a, b) => a + b, 0) / (rtts.length || 1);
      const mdev = Math.sqrt(rtts.reduce((a, b) => a + (b - avg) ** 2, 0) / (rtts.length || 1));
      console.log(JSON.stringify({ received: rtts.length, avgMs: avg, mdevMs: mdev, outOfOrder }));
      s.close();
    }, 1000);
  }
}, 20);`;

async function ping(from: Host, to: Host, count: number): Promise<Ping> {
  const out = await from.check(process.execPath, ['-e', PROBE, to.ip4, String(count)]);
  return JSON.parse(out) as Ping;
}

describe('WAN faults on the public segment', { skip: worldSkipReason() }, () => {
  let world: World;
  let a: Host;
  let b: Host;
  before(async () => {
    world = await World.create();
    a = await world.addHost('a');
    b = await world.addHost('b');
    await b.spawn(process.execPath, ['-e', ECHO]).waitForLine((l) => l === 'echo');
  });
  after(() => world?.close());

  test('50 ms each way ± 10 ms, 3% loss: ping sees a 100 ms round trip and some loss', async (t) => {
    const plain = await ping(a, b, 20);
    assert.equal(plain.received, 20);
    assert.ok(plain.avgMs < 10, `plain link: ${plain.avgMs} ms`);
    const fault = await WanFault.apply(world, 'public', [b], {
      delayMs: 50,
      jitterMs: 10,
      loss: 0.03,
      reorder: 0,
    });
    let impaired: Ping;
    try {
      impaired = await ping(a, b, 300);
    } finally {
      const counts = await fault.remove();
      t.diagnostic(`forwarder: ${JSON.stringify(counts)}`);
      assert.ok((counts?.dropped ?? 0) > 0 && (counts?.forwarded ?? 0) > 500, 'the forwarder counted');
    }
    t.diagnostic(`impaired: ${JSON.stringify(impaired)}`);
    // Both ways lose 3%: about 6% of 300 round trips.
    assert.ok(impaired.received < 300 && impaired.received > 250, `received ${impaired.received}/300`);
    assert.ok(impaired.avgMs > 90 && impaired.avgMs < 115, `round trip ${impaired.avgMs} ms`);
    assert.ok(impaired.mdevMs > 2, `jitter shows: mdev ${impaired.mdevMs} ms`);
    const healed = await ping(a, b, 20);
    assert.equal(healed.received, 20);
    assert.ok(healed.avgMs < 10, `healed link: ${healed.avgMs} ms`);
  });

  test('a blackout passes nothing; traffic passes again once it is removed', async () => {
    const fault = await WanFault.apply(world, 'public', [b], BLACKOUT);
    try {
      assert.equal((await ping(a, b, 10)).received, 0);
    } finally {
      await fault.remove();
    }
    assert.equal((await ping(a, b, 10)).received, 10);
  });

  test('bad impairments are refused, and the link stays as it was', async () => {
    await assert.rejects(
      WanFault.apply(world, 'public', [b], { delayMs: 5, jitterMs: 10, loss: 0, reorder: 0 }),
      /delayMs >= jitterMs/,
    );
    await assert.rejects(WanFault.apply(world, 'public', [], BLACKOUT), /no hosts/);
    assert.equal((await ping(a, b, 5)).received, 5);
  });
});
