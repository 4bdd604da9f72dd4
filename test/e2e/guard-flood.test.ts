// A bounded flood of spoofed SYNs (50k packets within 20 s, from inet to the gateway only):
// the guard stays alive, its memory bounded by the source cap, and a correct knock still works.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sampleProc } from '../../bench/proc.js';
import { World, worldSkipReason, type Host } from '../../world/world.js';
import { AGENT, CLI, eventually, startGateway, type Gateway } from './gateway.js';

const skip = worldSkipReason();
const CAP = 2000;
const PACKETS = 50000;

describe('SYN flood against the guard', { skip }, () => {
  let world: World;
  let gw: Gateway;
  let inet: Host;

  before(async () => {
    world = await World.create();
    inet = await world.addHost('inet', { public: 1 });
    gw = await startGateway(world, 'gw1', {
      kind: 'guard',
      gateway: 'gw1',
      maxTrackedSources: CAP,
      statsIntervalSeconds: 1,
      static: [{ name: 'ops', sequence: ['7000', '8000:udp', '9000'] }],
      rotating: { clients: [{ name: 'alice', secret: 'F'.repeat(43) }] },
    });
  });
  after(() => world?.close());

  /** `received` from the guard's newest stats line, after it has had time to log one. */
  const received = async () => {
    await new Promise((r) => setTimeout(r, 1200));
    const stats = gw.guard.jsonLines().filter((l) => l.event === 'stats');
    return Number(stats.at(-1)?.received);
  };

  test('SYNs and connections to 80/443 never reach the daemon (kernel-side filtering)', async (t) => {
    const before = await received();
    assert.ok(Number.isInteger(before), 'the guard logs stats');
    const cpuBefore = sampleProc(gw.guard.pid).cpuSeconds;
    const started = Date.now();
    const flood = await inet.runNode(AGENT, [
      'flood',
      gw.host.ip4,
      '--count',
      '5000',
      '--ports',
      '80-80',
      '--hot-ports',
      '443',
    ]);
    assert.equal(flood.code, 0, flood.stderr);
    for (let i = 0; i < 20; i++) {
      const r = await inet.runNode(AGENT, ['probe', gw.host.ip4, i % 2 === 0 ? '80' : '443']);
      assert.equal(r.stdout.trim(), 'open');
    }
    assert.equal(await received(), before);
    const figures = {
      guardCpuSeconds: +(sampleProc(gw.guard.pid).cpuSeconds - cpuBefore).toFixed(2),
      wallSeconds: (Date.now() - started) / 1000,
    };
    t.diagnostic(`80/443 figures (5000 SYNs + 20 connections): ${JSON.stringify(figures)}`);
    console.log(`80/443 figures (5000 SYNs + 20 connections): ${JSON.stringify(figures)}`);
  });

  test('survives 50k random SYNs with bounded memory; a correct knock works afterwards', async (t) => {
    const pid = gw.guard.pid;
    const before = sampleProc(pid);
    const started = Date.now();
    const flood = await inet.runNode(
      AGENT,
      [
        'flood',
        gw.host.ip4,
        '--count',
        String(PACKETS),
        '--seconds',
        '20',
        '--knock-ports',
        '20000-29999',
        '--hot-ports',
        '7000',
      ],
      { timeoutMs: 30000 },
    );
    assert.equal(flood.code, 0, flood.stderr);
    const sent = JSON.parse(flood.stdout) as { sent: number; errors: number; ms: number };
    await new Promise((r) => setTimeout(r, 1500)); // let the guard drain its socket and log stats
    const afterFlood = sampleProc(pid);
    const wallSeconds = (Date.now() - started) / 1000;
    assert.ok(gw.guard.running, 'the guard is alive');

    const stats = gw.guard.jsonLines().filter((l) => l.event === 'stats');
    const last = stats.at(-1) as { received: number; tracked: number; evicted: number; rssBytes: number };
    const maxTracked = Math.max(...stats.map((l) => Number(l.tracked)));
    const figures = {
      packetsSent: sent.sent,
      floodMs: sent.ms,
      guardReceived: last.received,
      guardMaxTracked: maxTracked,
      guardEvicted: last.evicted,
      cpuSeconds: +(afterFlood.cpuSeconds - before.cpuSeconds).toFixed(2),
      cpuPercentOfWall: +((100 * (afterFlood.cpuSeconds - before.cpuSeconds)) / wallSeconds).toFixed(1),
      rssKiBBefore: before.rssKiB,
      rssKiBAfter: afterFlood.rssKiB,
      hwmKiB: afterFlood.hwmKiB,
    };
    t.diagnostic(`flood figures: ${JSON.stringify(figures)}`);
    console.log(`flood figures: ${JSON.stringify(figures)}`);

    assert.ok(sent.sent >= PACKETS * 0.99, `flood sent ${sent.sent}`);
    assert.ok(last.received > sent.sent / 10, 'knock-port SYNs reached the guard');
    assert.ok(last.received < sent.sent, 'SYNs to other ports did not');
    assert.ok(maxTracked <= CAP, `tracked sources stay under the cap (max ${maxTracked})`);
    assert.ok(last.evicted > 0, 'the cap was reached and old sources evicted');
    assert.ok(afterFlood.hwmKiB < 200 * 1024, `peak RSS ${afterFlood.hwmKiB} KiB`);

    const probe = async () =>
      (await inet.runNode(AGENT, ['probe', gw.host.ip4, '22', '--timeout', '300'])).stdout.trim();
    assert.equal(await probe(), 'filtered');
    await inet.runNode(CLI, ['knock', gw.host.ip4, '--sequence', '7000,8000:udp,9000']);
    await eventually(async () => (await probe()) === 'open', 1000, 20);
  });
});
