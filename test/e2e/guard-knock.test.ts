// The knock guard in the test world: a correct knock opens SSH for that address only, for the
// window; sessions outlive it; wrong order, wrong ports, slowness and replays open nothing, also
// once the guard was killed and restarted (its stateFile).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KnockStep } from '../../config/knock.js';
import { deriveSequence, newKnockSecret, timeStep } from '../../knock/rotating.js';
import { World, worldSkipReason, type Host } from '../../world/world.js';
import {
  AGENT,
  BATCH_SSH_OPTIONS,
  CLI,
  eventually,
  probe as probeFrom,
  startGateway,
  startGuard,
  writeKnockProfiles,
  type Gateway,
} from './gateway.js';

const skip = worldSkipReason();
const ROTATION = { portMin: 20000, portMax: 29999, length: 4, stepSeconds: 60 };
const WINDOW_SECONDS = 3;

describe('knock guard', { skip }, () => {
  let world: World;
  let gw: Gateway;
  let inet: Host;
  let a: string;
  let b: string;
  let c: string;
  let d: string;
  const secret = newKnockSecret();
  let profiles: string;
  /** The rotating sequence alice sent in the first test: what an observer captured. */
  let sent: KnockStep[] = [];
  let sentStep = 0;
  let guardConfig: object;

  before(async () => {
    world = await World.create();
    inet = await world.addHost('inet', { public: 4 });
    [a, b, c, d] = inet.addresses.public.v4 as [string, string, string, string];
    guardConfig = {
      kind: 'guard',
      gateway: 'gw1',
      windowSeconds: WINDOW_SECONDS,
      sequenceTimeoutMs: 2000,
      stateFile: join(world.dir, 'gw1', 'guard-state'),
      static: [{ name: 'ops', sequence: ['7000', '8000:udp', '9000'] }],
      rotating: { ...ROTATION, clients: [{ name: 'alice', secret }] },
    };
    gw = await startGateway(world, 'gw1', guardConfig);
    profiles = writeKnockProfiles(world.dir, {
      gw1: {
        host: gw.host.ip4,
        sshPort: 22,
        rotating: { gateway: 'gw1', client: 'alice', secret, ...ROTATION },
      },
      ops: { sequence: ['7000', '8000:udp', '9000'] },
    });
  });
  after(() => world?.close());

  const probe = (from: string, port = 22, timeoutMs = 700) =>
    probeFrom(inet, gw.host.ip4, port, { bind: from, timeoutMs });
  const knock = (from: string, args: string[]) =>
    inet.runNode(CLI, ['knock', gw.host.ip4, '--bind', from, '--profiles', profiles, ...args]);

  test('a correct rotating knock opens SSH for that address only, within a second', async () => {
    assert.equal(await probe(a), 'filtered');
    // Keep clear of a step boundary so that `sent` is exactly what went on the wire.
    const msIntoStep = Date.now() % (ROTATION.stepSeconds * 1000);
    if (msIntoStep > (ROTATION.stepSeconds - 3) * 1000)
      await sleep(ROTATION.stepSeconds * 1000 - msIntoStep + 100);
    const step = timeStep(Date.now(), ROTATION.stepSeconds);
    sent = deriveSequence({ gateway: 'gw1', client: 'alice', secret }, step, ROTATION);
    sentStep = step;
    const r = await knock(a, ['--profile', 'gw1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(timeStep(Date.now(), ROTATION.stepSeconds), step);
    const ms = await eventually(async () => (await probe(a, 22, 300)) === 'open', 1000, 20);
    assert.ok(ms <= 1000, `opened after ${ms} ms`);
    assert.equal(await probe(b), 'filtered', 'B knocked nothing and must still see SSH filtered');
    const opened = gw.audit().find((l) => l.outcome === 'opened' && l.clientIp === a);
    assert.equal(opened?.client, 'alice');
    assert.ok(!JSON.stringify(gw.guard.lines).includes(secret), 'the secret never appears in logs');
  });

  test('the window closes by itself and a session opened inside it survives', async () => {
    await knock(c, ['--profile', 'ops']);
    await sleep(200);
    const session = inet.node(AGENT, ['hold', gw.host.ip4, '22', '--bind', c, '--timeout', '2000']);
    const banner = await session.waitForLine((l) => l.startsWith('connected') || l === 'filtered', 5000);
    assert.match(banner, /^connected SSH-2\.0-OpenSSH/);
    await eventually(async () => (await probe(c, 22, 300)) === 'filtered', (WINDOW_SECONDS + 3) * 1000, 200);
    session.child.stdin?.write('send\n');
    assert.equal(await session.waitForLine((l) => l === 'alive' || l === 'dead', 5000), 'alive');
  });

  test('wrong order, a wrong port between steps, and too slow all stay closed', async () => {
    const ip = gw.host.ip4;
    await inet.runNode(CLI, ['knock', ip, '--bind', d, '--sequence', '9000,8000:udp,7000']);
    await sleep(300);
    assert.equal(await probe(d), 'filtered', 'wrong order');
    // The daemon only sees knock ports (static steps and the rotating range): 25000 is one.
    await inet.runNode(CLI, ['knock', ip, '--bind', d, '--sequence', '7000,8000:udp,25000,9000']);
    await sleep(300);
    assert.equal(await probe(d), 'filtered', 'wrong port between steps');
    await inet.runNode(CLI, [
      'knock',
      ip,
      '--bind',
      d,
      '--sequence',
      '7000,8000:udp,9000',
      '--delay',
      '1200',
    ]);
    await sleep(300);
    assert.equal(await probe(d), 'filtered', 'slower than sequenceTimeoutMs (2000)');
    const outcomes = gw
      .audit()
      .filter((l) => l.clientIp === d)
      .map((l) => l.outcome);
    assert.ok(outcomes.includes('failed'), `audit has a failed attempt: ${outcomes.join(',')}`);
    assert.ok(outcomes.includes('expired'), `audit has an expired attempt: ${outcomes.join(',')}`);
    assert.ok(!outcomes.includes('opened'));
  });

  test('a duplicate of the step just matched is tolerated', async () => {
    await inet.runNode(CLI, [
      'knock',
      gw.host.ip4,
      '--bind',
      b,
      '--sequence',
      '7000,7000,8000:udp,8000:udp,9000',
    ]);
    await eventually(async () => (await probe(b, 22, 300)) === 'open', 1000, 20);
  });

  test('replaying a captured rotating sequence opens nothing, from the same or another address', async () => {
    // Replayed in the same step or the next (still accepted for clock skew): spent either way.
    assert.equal(sent.length, ROTATION.length);
    const seen = sent.map((s) => String(s.port)).join(',');
    await eventually(async () => (await probe(a, 22, 300)) === 'filtered', (WINDOW_SECONDS + 3) * 1000, 200);
    for (const from of [a, d]) {
      await inet.runNode(CLI, ['knock', gw.host.ip4, '--bind', from, '--sequence', seen]);
      await sleep(400);
      assert.equal(await probe(from), 'filtered', `replay from ${from}`);
    }
    const replays = gw.audit().filter((l) => l.client === 'alice' && l.outcome === 'opened');
    assert.equal(replays.length, 1, 'only the original knock opened');
  });

  test('IPv6: a knock over v6 opens SSH over v6 for that address only', async () => {
    const [v6a, v6b] = inet.addresses.public.v6 as [string, string];
    const probe6 = (from: string) => probeFrom(inet, gw.host.ip6, 22, { bind: from, timeoutMs: 300 });
    assert.equal(await probe6(v6a), 'filtered');
    await inet.runNode(CLI, ['knock', gw.host.ip6, '--bind', v6a, '--sequence', '7000,8000:udp,9000']);
    await eventually(async () => (await probe6(v6a)) === 'open', 1000, 20);
    assert.equal(await probe6(v6b), 'filtered');
    assert.ok(gw.audit().some((l) => l.outcome === 'opened' && l.clientIp === v6a));
  });

  test('IPv6: nonstop knock --then-ssh opens the v6 port and logs in over v6', async () => {
    const v6c = inet.addresses.public.v6[2]!;
    const r = await inet.runNode(CLI, [
      'knock',
      '--bind',
      v6c,
      '--profiles',
      profiles,
      '--profile',
      'ops',
      gw.host.ip6,
      '--then-ssh',
      '--user',
      'root',
      '--',
      '-i',
      gw.clientKey,
      ...BATCH_SSH_OPTIONS,
      'echo',
      '$SSH_CONNECTION',
    ]);
    // sshd saw the session come from the v6 source that knocked, to the gateway's v6 address.
    assert.equal(r.stdout.trim().split(' ')[0], v6c, r.stderr);
    assert.equal(r.stdout.trim().split(' ')[2], gw.host.ip6, r.stderr);
    assert.ok(gw.audit().some((l) => l.outcome === 'opened' && l.clientIp === v6c && l.sequence === 'ops'));
  });

  test('--then-ssh logs in over the opened port', async () => {
    const r = await inet.runNode(CLI, [
      'knock',
      '--bind',
      c,
      '--profiles',
      profiles,
      '--profile',
      'ops',
      gw.host.ip4,
      '--then-ssh',
      '--user',
      'root',
      '--',
      '-i',
      gw.clientKey,
      ...BATCH_SSH_OPTIONS,
      'echo',
      'knocked-in',
    ]);
    assert.equal(r.stdout.trim(), 'knocked-in', r.stderr);
  });

  test('fails closed: with the daemon killed, SSH stays filtered and 80/443 still answer', async () => {
    gw.guard.child.kill('SIGKILL');
    await gw.guard.exited;
    await inet.runNode(CLI, ['knock', gw.host.ip4, '--bind', d, '--sequence', '7000,8000:udp,9000']);
    await sleep(300);
    assert.equal(await probe(d), 'filtered');
    assert.equal(await probe(d, 7000), 'filtered', 'a knock port with nobody reading it still says nothing');
    assert.equal(await probe(d, 80), 'open');
    assert.equal(await probe(d, 443), 'open');
  });

  test('restarted after that, the guard still refuses the rotating knock spent before it', async () => {
    gw = { ...gw, guard: await startGuard(gw.host, gw.dir, guardConfig) };
    const state = gw.guard.jsonLines().find((l) => l.event === 'state');
    assert.equal(state?.spentSteps, 1, JSON.stringify(state));
    // Still a step the guard accepts: without the journal, this replay would open.
    assert.ok(timeStep(Date.now(), ROTATION.stepSeconds) - sentStep <= 1, 'replayed within its steps');
    const seen = sent.map((s) => String(s.port)).join(',');
    await inet.runNode(CLI, ['knock', gw.host.ip4, '--bind', c, '--sequence', seen]);
    await sleep(400);
    assert.equal(await probe(c), 'filtered', 'the captured knock replayed after the restart');
    const opened = gw.guard.jsonLines().filter((l) => l.event === 'knock' && l.outcome === 'opened');
    assert.deepEqual(opened, [], 'nothing opened for it');
    // It is listening: a static knock still opens.
    await inet.runNode(CLI, ['knock', gw.host.ip4, '--bind', c, '--sequence', '7000,8000:udp,9000']);
    await eventually(async () => (await probe(c, 22, 300)) === 'open', 1500, 50);
  });
});
