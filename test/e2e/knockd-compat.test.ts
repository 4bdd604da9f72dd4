// Static sequences speak knockd's language both ways: knockd's own `knock` client opens a
// guard, and `nonstop knock --sequence` opens a real knockd.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { World, worldSkipReason, type Host } from '../../world/world.js';
import { AGENT, CLI, eventually, startGateway, type Gateway } from './gateway.js';

const skip = worldSkipReason();
const SEQUENCE = '7000,8000:udp,9000';

describe('knockd compatibility', { skip }, () => {
  let world: World;
  let inet: Host;

  before(async () => {
    world = await World.create();
    inet = await world.addHost('inet', { public: 2 });
  });
  after(() => world?.close());

  test("knockd's knock client opens a static-sequence guard", async () => {
    const gw: Gateway = await startGateway(world, 'gw1', {
      kind: 'guard',
      gateway: 'gw1',
      windowSeconds: 10,
      static: [{ name: 'ops', sequence: SEQUENCE.split(',') }],
    });
    const probe = async () =>
      (await inet.runNode(AGENT, ['probe', gw.host.ip4, '22', '--timeout', '300'])).stdout.trim();
    assert.equal(await probe(), 'filtered');
    const r = await inet.exec('knock', ['-d', '20', gw.host.ip4, ...SEQUENCE.split(',')]);
    assert.equal(r.code, 0, r.stderr);
    await eventually(async () => (await probe()) === 'open', 1000, 20);
    assert.deepEqual(
      gw.audit().map((l) => [l.outcome, l.sequence, l.clientIp]),
      [['opened', 'ops', inet.ip4]],
    );
  });

  test('nonstop knock --sequence opens a real knockd', async () => {
    const host = await world.addHost('kd', { public: 1 });
    const dir = join(world.dir, 'knockd');
    const marker = join(dir, 'opened');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    const conf = join(dir, 'knockd.conf');
    writeFileSync(
      conf,
      [
        '[options]',
        `  LogFile = ${join(dir, 'knockd.log')}`,
        `  PidFile = ${join(dir, 'knockd.pid')}`,
        '  Interface = pub0',
        '[openSSH]',
        `  sequence = ${SEQUENCE}`,
        '  seq_timeout = 5',
        '  tcpflags = syn',
        `  command = /usr/bin/touch ${marker}-%IP%`,
        '',
      ].join('\n'),
    );
    const knockd = host.spawn('/usr/sbin/knockd', ['-c', conf, '-i', 'pub0', '-v']);
    await knockd.waitForLine((l) => l.includes('listening on pub0'), 10000);
    // A different sequence first: knockd must not fire on it.
    await inet.runNode(CLI, ['knock', host.ip4, '--sequence', '9000,8000:udp,7000']);
    const r = await inet.runNode(CLI, [
      'knock',
      host.ip4,
      '--sequence',
      SEQUENCE,
      '--bind',
      inet.addresses.public.v4[1]!,
    ]);
    assert.equal(r.code, 0, r.stderr);
    await eventually(
      async () => Promise.resolve(existsSync(`${marker}-${inet.addresses.public.v4[1]}`)),
      3000,
    );
    assert.equal(existsSync(`${marker}-${inet.ip4}`), false, 'the wrong order opened nothing');
  });
});
