// Clock skew between a knocking host and a gateway's guard, the knocker's clock shifted with
// libfaketime (LD_PRELOAD; monotonic time left alone, so Node's timers run as ever). Rotating
// sequences with the defaults (30 s steps): 20 s ahead or behind opens SSH, for `nonstop knock`
// and for a broker's tunnel; 90 s off opens nothing, the guard says once (not per attempt) that
// the knocking host's clock is off, and the broker's tunnel backs off and says once that the
// clock may be why.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { newKnockSecret } from '../../knock/rotating.js';
import { faketimeSkipReason, skewedClockEnv } from '../../world/faketime.js';
import { packageRoot, World, worldSkipReason, type Host, type HostProcess } from '../../world/world.js';
import {
  CLI,
  eventually,
  probe as probeFrom,
  startGateway,
  writeKnockProfiles,
  type Gateway,
} from './gateway.js';

const skip = worldSkipReason() ?? faketimeSkipReason();
/** The defaults: what an operator gets without setting anything. */
const ROTATION = { portMin: 20000, portMax: 29999, length: 4, stepSeconds: 30 };
const DRIVER = 'dist/test/world/skew-tunnel.js';
const TUNNEL = { connectTimeoutMs: 1500, backoffInitialMs: 500, backoffMaxMs: 2000 };

/** `env` arguments that run a command with its clock `seconds` off (wall clock only). */
function skewed(seconds: number): string[] {
  return Object.entries(skewedClockEnv(seconds)).map(([k, v]) => `${k}=${v}`);
}

describe('clock skew and rotating knocks', { skip }, () => {
  let world: World;
  let gw: Gateway;
  let inet: Host;
  let addresses: string[];
  let profiles: string;
  const secrets = { alice: newKnockSecret(), b1: newKnockSecret() };
  let fingerprint: string;

  before(async () => {
    world = await World.create();
    inet = await world.addHost('inet', { public: 4 });
    addresses = inet.addresses.public.v4;
    gw = await startGateway(world, 'gw1', {
      kind: 'guard',
      gateway: 'gw1',
      windowSeconds: 3,
      sequenceTimeoutMs: 2000,
      rotating: {
        ...ROTATION,
        clients: [
          { name: 'alice', secret: secrets.alice },
          { name: 'b1', secret: secrets.b1 },
        ],
      },
    });
    profiles = writeKnockProfiles(world.dir, {
      gw1: { sshPort: 22, rotating: { gateway: 'gw1', client: 'alice', secret: secrets.alice, ...ROTATION } },
    });
    writeFileSync(join(world.dir, 'b1.knock'), `${secrets.b1}\n`, { mode: 0o600 });
    // "256 SHA256:… comment (ED25519)"
    fingerprint = execFileSync('ssh-keygen', ['-lf', join(gw.dir, 'hostkey.pub')], {
      encoding: 'utf8',
    }).split(' ')[1]!;
  });
  after(() => world?.close());

  const probe = (from: string) => probeFrom(inet, gw.host.ip4, 22, { bind: from, timeoutMs: 300 });
  const knock = (from: string, seconds: number) =>
    inet.exec('env', [
      ...skewed(seconds),
      process.execPath,
      join(packageRoot(), CLI),
      'knock',
      gw.host.ip4,
      '--bind',
      from,
      '--profiles',
      profiles,
      '--profile',
      'gw1',
    ]);
  const skewLines = (ip: string) =>
    gw.guard.jsonLines().filter((l) => l.event === 'knock-clock-skew' && l.clientIp === ip);

  /** A broker's tunnel to gw1, on a host of its own, its clock `seconds` off. */
  async function brokerTunnel(name: string, seconds: number): Promise<{ host: Host; proc: HostProcess }> {
    const host = await world.addHost(name, { public: 1 });
    const spec = {
      gatewayId: 'gw1',
      ssh: {
        host: gw.host.ip4,
        port: 22,
        user: 'root',
        hostKeyFingerprint: fingerprint,
        privateKey: gw.clientKey,
        remotePort: 16379,
        knock: {
          delayMs: 30,
          rotating: { ...ROTATION, client: 'b1', secretFile: join(world.dir, 'b1.knock') },
        },
      },
      ...TUNNEL,
    };
    const proc = host.spawn('env', [
      ...skewed(seconds),
      process.execPath,
      join(packageRoot(), DRIVER),
      JSON.stringify(spec),
    ]);
    return { host, proc };
  }

  test('libfaketime shifts what Node reads as the wall clock', async () => {
    for (const seconds of [90, -90]) {
      const r = await inet.exec('env', [...skewed(seconds), process.execPath, '-p', 'Date.now()']);
      assert.equal(r.code, 0, r.stderr);
      const offsetMs = Number(r.stdout.trim()) - Date.now();
      assert.ok(
        Math.abs(offsetMs - seconds * 1000) < 2000,
        `Date.now() is ${offsetMs} ms off, not ${seconds} s`,
      );
    }
  });

  test('20 s ahead or behind: a rotating knock opens SSH, and the guard blames no clock', async () => {
    for (const [from, seconds] of [
      [addresses[0]!, 20],
      [addresses[1]!, -20],
    ] as const) {
      assert.equal(await probe(from), 'filtered');
      const r = await knock(from, seconds);
      assert.equal(r.code, 0, r.stderr);
      await eventually(async () => (await probe(from)) === 'open', 1500, 50);
      assert.equal(skewLines(from).length, 0);
    }
  });

  test('90 s ahead or behind: nothing opens, and the guard says once to fix the clock', async () => {
    for (const [from, seconds] of [
      [addresses[2]!, 90],
      [addresses[3]!, -90],
    ] as const) {
      for (let i = 0; i < 4; i++) {
        const r = await knock(from, seconds);
        assert.equal(r.code, 0, r.stderr);
        await sleep(300);
      }
      assert.equal(await probe(from), 'filtered', `${seconds} s off must not open`);
      const lines = skewLines(from);
      assert.equal(lines.length, 1, `one clock line for four knocks from ${from}`);
      // 90 s is three 30 s steps. The knocker picks its step when it sends, the guard compares
      // with its own when the sequence has arrived: a step boundary in between (it moves only
      // forward) makes the guard see one step less.
      assert.ok(
        [seconds, seconds - ROTATION.stepSeconds].includes(Number(lines[0]!.skewSeconds)),
        `skewSeconds ${String(lines[0]!.skewSeconds)} for a knocker ${seconds} s off`,
      );
      assert.equal(lines[0]!.toleranceSeconds, 30);
      assert.match(String(lines[0]!.msg), /fix the clock \(NTP\) on the knocking host/);
      assert.match(String(lines[0]!.msg), seconds > 0 ? /ahead of/ : /behind/);
      const outcomes = gw
        .audit()
        .filter((l) => l.clientIp === from)
        .map((l) => l.outcome);
      assert.ok(!outcomes.includes('opened'), `audit: ${outcomes.join(',')}`);
    }
  });

  test('a broker 20 s ahead gets its tunnel up; 90 s ahead it backs off and says once it may be the clock', async (t) => {
    const near = await brokerTunnel('b20', 20);
    await near.proc.waitForLine((l) => l.includes('"msg":"tunnel up"'), 15000);
    assert.equal(near.proc.jsonLines().filter((l) => l.event === 'knock-unanswered').length, 0);
    await near.proc.stop();

    const far = await brokerTunnel('b90', 90);
    const clock = await far.proc.waitForLine((l) => l.includes('"event":"clock"'), 10000);
    const offsetMs = (JSON.parse(clock) as { nowMs: number }).nowMs - Date.now();
    assert.ok(Math.abs(offsetMs - 90_000) < 3000, `the broker's clock is ${offsetMs} ms off`);
    const windowMs = 10_000;
    await sleep(windowMs);
    const lines = far.proc.jsonLines();
    const attempts = lines.filter((l) => l.msg === 'tunnel could not be set up; retrying').length;
    // Each attempt waits connectTimeoutMs for a port that stays filtered, then backs off at
    // least backoffInitialMs / 2 the first time and backoffInitialMs after that.
    const most = 1 + Math.floor(windowMs / (TUNNEL.connectTimeoutMs + TUNNEL.backoffInitialMs));
    assert.ok(attempts >= 3 && attempts <= most, `${attempts} attempts in ${windowMs} ms (at most ${most})`);
    assert.ok(!lines.some((l) => l.msg === 'tunnel up'));
    t.diagnostic(`broker 90 s ahead: ${attempts} attempts in ${windowMs} ms`);
    const hints = lines.filter((l) => l.event === 'knock-unanswered');
    assert.equal(hints.length, 1, `one hint for ${attempts} attempts`);
    assert.match(String(hints[0]!.msg), /more than 30 s off the gateway's.*fix the clock \(NTP\)/);
    const guardLines = skewLines(far.host.ip4);
    assert.equal(guardLines.length, 1, `the guard says it once for ${attempts} attempts`);
    assert.equal(guardLines[0]!.client, 'b1');
    // 90, or 60 when a step boundary fell between the knock and its arrival (as above).
    assert.ok([90, 90 - ROTATION.stepSeconds].includes(Number(guardLines[0]!.skewSeconds)));
    await far.proc.stop();
  });
});
