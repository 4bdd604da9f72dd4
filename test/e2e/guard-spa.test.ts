// Single-packet authorization in the test world: Debian's fwknop client opens the nonstop guard,
// `nonstop knock --spa` opens it over IPv4 and IPv6 and opens a real fwknopd; a captured packet
// replayed (from its source or another), a tampered one, an old one, one asking for another port
// or another address open nothing, and so does a used one after the guard was killed and restarted
// (its stateFile); a flood of random UDP to the SPA port is held by nftables
// before the daemon, so the guard's CPU and memory stay bounded and a good packet still opens.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sampleProc } from '../../bench/proc.js';
import { encodeSpa, formatSpaKeyFile, type SpaRequest } from '../../knock/spa.js';
import { ALICE, NAT, spaKeyOf, type SpaClientKeys } from '../helpers/spa-keys.js';
import { fwknopdSaid, startFwknopd } from '../../world/fwknopd.js';
import { World, worldSkipReason, type Host } from '../../world/world.js';
import {
  AGENT,
  CLI,
  eventually,
  probe as probeFrom,
  startGateway,
  startGuard,
  startHttp,
  type Gateway,
} from './gateway.js';

const skip = worldSkipReason();
const WINDOW_SECONDS = 3;
const SPA_PORT = 62201;
const SHARED_RATE = 2000;

describe('single-packet authorization (fwknop format) on the guard', { skip }, () => {
  let world: World;
  let gw: Gateway;
  let inet: Host;
  let from: string[];
  let from6: string[];
  let aliceKeys: string;
  let guardConfig: object;

  before(async () => {
    world = await World.create();
    inet = await world.addHost('inet', { public: 6 });
    from = inet.addresses.public.v4;
    from6 = inet.addresses.public.v6;
    guardConfig = {
      kind: 'guard',
      gateway: 'gw1',
      windowSeconds: WINDOW_SECONDS,
      metrics: {},
      stateFile: join(world.dir, 'gw1', 'guard-state'),
      spa: {
        port: SPA_PORT,
        packetsPerSecond: SHARED_RATE,
        clients: [ALICE, { ...NAT, openFor: 'packet' }],
      },
    };
    gw = await startGateway(world, 'gw1', guardConfig);
    aliceKeys = join(world.dir, 'alice.spa');
    writeFileSync(aliceKeys, formatSpaKeyFile(spaKeyOf(ALICE)), { mode: 0o600 });
  });
  after(() => world?.close());

  const probe = (src: string, dst = gw.host.ip4, timeoutMs = 500) =>
    probeFrom(inet, dst, 22, { bind: src, timeoutMs });
  const opens = (src: string, dst = gw.host.ip4) =>
    eventually(async () => (await probe(src, dst, 300)) === 'open', 1500, 50);
  const spaLines = () => gw.guard.jsonLines().filter((l) => l.event === 'spa');
  /** Sends bytes as one datagram from `src` (the packet an observer captured, or a forgery). */
  const send = async (src: string, payload: Buffer, dst = gw.host.ip4) => {
    const r = await inet.runNode(AGENT, [
      'udp',
      dst,
      String(SPA_PORT),
      '--bind',
      src,
      '--payload',
      payload.toString('hex'),
    ]);
    assert.equal(r.code, 0, r.stderr);
  };
  const packet = (fields: Partial<SpaRequest> = {}, who: SpaClientKeys = ALICE, atMs = Date.now()) =>
    encodeSpa(
      { username: 'ops', accessAddress: '0.0.0.0', access: 'tcp/22', ...fields },
      spaKeyOf(who),
      atMs,
    );
  const metric = async (outcome: string) => {
    const text = await gw.host.check('curl', ['-sf', 'http://127.0.0.1:9466/metrics']);
    const m = new RegExp(`^nonstop_guard_spa_packets_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(
      text,
    );
    return Number(m?.[1]);
  };

  test("Debian's fwknop client opens SSH for its address only", async () => {
    assert.equal(await probe(from[0]!), 'filtered');
    const home = join(world.dir, 'fwknop-home');
    const r = await inet.exec('env', [
      `HOME=${home}`,
      'fwknop',
      '--no-rc-file',
      '--no-save-args',
      '-A',
      'tcp/22',
      '-a',
      inet.ip4,
      '-D',
      gw.host.ip4,
      '--server-port',
      String(SPA_PORT),
      '--use-hmac',
      '--key-base64-rijndael',
      ALICE.key,
      '--key-base64-hmac',
      ALICE.hmacKey,
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(from[0], inet.ip4, "fwknop sends from the host's first address");
    const ms = await opens(from[0]);
    assert.ok(ms <= 1500, `opened after ${ms} ms`);
    assert.equal(await probe(from[1]!), 'filtered', 'another address stays filtered');
    const opened = spaLines().find((l) => l.outcome === 'opened' && l.clientIp === from[0]);
    assert.equal(opened?.client, 'alice');
    assert.ok(!gw.guard.lines.join('\n').includes(ALICE.key), 'no key in the logs');
  });

  test('nonstop knock --spa opens it over IPv4 and IPv6', async () => {
    const knock = (src: string, dst: string) =>
      inet.runNode(CLI, ['knock', dst, '--spa', '--spa-keys', aliceKeys, '--bind', src]);
    const v4 = await knock(from[1]!, gw.host.ip4);
    assert.equal(v4.code, 0, v4.stderr);
    await opens(from[1]!);
    assert.equal(await probe(from6[1]!, gw.host.ip6), 'filtered');
    const v6 = await knock(from6[1]!, gw.host.ip6);
    assert.equal(v6.code, 0, v6.stderr);
    await opens(from6[1]!, gw.host.ip6);
    assert.ok(spaLines().some((l) => l.outcome === 'opened' && l.openedFor === from6[1]));
  });

  test('a captured packet replayed, from its source or another, opens nothing', async () => {
    const captured = packet();
    await send(from[2]!, captured);
    await opens(from[2]!);
    // Once its window has closed, the same bytes again, from the same source and from another.
    await eventually(async () => (await probe(from[2]!)) === 'filtered', (WINDOW_SECONDS + 3) * 1000, 200);
    await send(from[2]!, captured);
    await send(from[3]!, captured);
    await sleep(500);
    assert.equal(await probe(from[2]!), 'filtered', 'replayed from its own source');
    assert.equal(await probe(from[3]!), 'filtered', 'replayed from another source');
    const replays = spaLines().filter((l) => l.outcome === 'refused' && l.reason === 'replay');
    assert.deepEqual(replays.map((l) => l.clientIp).sort(), [from[2], from[3]].sort());
  });

  test('a packet used before the guard is killed and restarted opens nothing after it', async () => {
    const captured = packet();
    const [src, other] = [from6[2]!, from6[3]!];
    await send(src, captured, gw.host.ip6);
    await opens(src, gw.host.ip6);
    // A crash, then what Restart=always does: the same config, a new process.
    gw.guard.child.kill('SIGKILL');
    await gw.guard.exited;
    gw = { ...gw, guard: await startGuard(gw.host, gw.dir, guardConfig) };
    const state = gw.guard.jsonLines().find((l) => l.event === 'state');
    assert.equal(state?.existed, true, JSON.stringify(state));
    assert.ok(Number(state?.spaDigests) >= 1, JSON.stringify(state));
    await eventually(
      async () => (await probe(src, gw.host.ip6)) === 'filtered',
      (WINDOW_SECONDS + 3) * 1000,
      200,
    );
    await send(src, captured, gw.host.ip6);
    await send(other, captured, gw.host.ip6);
    await sleep(500);
    assert.equal(await probe(src, gw.host.ip6), 'filtered', 'replayed from its own source');
    assert.equal(await probe(other, gw.host.ip6), 'filtered', 'replayed from another source');
    // One line per /64 a minute: both addresses are in one.
    const replays = spaLines().filter((l) => l.outcome === 'refused' && l.reason === 'replay');
    assert.deepEqual(
      replays.map((l) => l.clientIp),
      [src],
    );
    // The restarted guard still opens for a new packet.
    await send(other, packet(), gw.host.ip6);
    await opens(other, gw.host.ip6);
  });

  test('one tampered byte, an old packet, another port or another address: nothing opens', async () => {
    const unauthenticated = await metric('unauthenticated');
    const src = from[4]!;
    const good = packet();
    for (const at of [0, 60, good.length - 1]) {
      const t = Buffer.from(good);
      t[at] = t[at] === 0x41 ? 0x42 : 0x41;
      await send(src, t);
    }
    await send(src, packet({}, ALICE, Date.now() - 200_000));
    await send(src, packet({ access: 'tcp/2222' }));
    await send(src, packet({ accessAddress: from[5]! }));
    await sleep(500);
    assert.equal(await probe(src), 'filtered');
    assert.equal(await probe(from[5]!), 'filtered');
    assert.equal(await metric('unauthenticated'), unauthenticated + 3, 'the three tampered packets');
    const reasons = spaLines()
      .filter((l) => l.clientIp === src && l.outcome === 'refused')
      .map((l) => l.reason);
    assert.deepEqual(reasons, ['stale', 'access', 'address']);
    const stale = spaLines().find((l) => l.clientIp === src && l.reason === 'stale');
    assert.match(String(stale?.msg), /fix it \(NTP\)/);
    // The client allowed to name an address opens that one, not its sender.
    await send(src, packet({ accessAddress: from[5]! }, NAT));
    await opens(from[5]!);
    assert.equal(await probe(src), 'filtered');
  });

  test('a flood of random UDP to the SPA port: bounded CPU and memory, and a good packet still opens', async (t) => {
    const pid = gw.guard.pid;
    const beforeFlood = sampleProc(pid);
    const counted = (await metric('unauthenticated')) + (await metric('refused')) + (await metric('opened'));
    const seconds = 8;
    const flood = await inet.runNode(AGENT, [
      'udp-flood',
      gw.host.ip4,
      String(SPA_PORT),
      '--count',
      '200000',
      '--seconds',
      String(seconds),
    ]);
    assert.equal(flood.code, 0, flood.stderr);
    const sent = (JSON.parse(flood.stdout) as { sent: number; ms: number }).sent;
    const afterFlood = sampleProc(pid);
    await sleep(300);
    const reached =
      (await metric('unauthenticated')) + (await metric('refused')) + (await metric('opened')) - counted;
    const figures = {
      sent,
      floodSeconds: seconds,
      reachedGuard: reached,
      guardCpuSeconds: +(afterFlood.cpuSeconds - beforeFlood.cpuSeconds).toFixed(2),
      guardRssMiB: +(afterFlood.rssKiB / 1024).toFixed(1),
      rssGrowthMiB: +((afterFlood.rssKiB - beforeFlood.rssKiB) / 1024).toFixed(1),
    };
    t.diagnostic(`SPA flood: ${JSON.stringify(figures)}`);
    console.log(`SPA flood: ${JSON.stringify(figures)}`);
    // The shared limit lets at most its rate (and one burst) through to the daemon.
    assert.ok(reached <= SHARED_RATE * (seconds + 2), `${reached} datagrams reached the guard`);
    assert.ok(sent > reached, 'the flood was larger than what got through');
    assert.ok(figures.guardCpuSeconds < seconds / 2, `guard CPU ${figures.guardCpuSeconds} s`);
    assert.ok(figures.rssGrowthMiB < 32, `guard RSS grew ${figures.rssGrowthMiB} MiB`);
    assert.ok(gw.guard.running, 'the guard is alive');
    await send(from[3]!, packet());
    await opens(from[3]!);
  });

  test('the SPA port never answers, not even with ICMP (a closed port elsewhere does)', async () => {
    const answer = async (dst: string, port: number, payload: Buffer) => {
      const r = await inet.runNode(AGENT, [
        'udp',
        dst,
        String(port),
        '--bind',
        from[5]!,
        '--payload',
        payload.toString('hex'),
        '--listen',
        '700',
      ]);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { answer: string }).answer;
    };
    assert.equal(await answer(gw.host.ip4, SPA_PORT, Buffer.from('garbage')), 'none');
    assert.equal(await answer(gw.host.ip4, SPA_PORT, packet({ access: 'tcp/2222' })), 'none');
    // The control: a host without a guard answers a closed UDP port with port unreachable.
    assert.equal(await answer(inet.ip4, 9, Buffer.from('x')), 'refused');
  });

  test('nonstop knock --spa opens a real fwknopd (its access command adds the source to nftables)', async () => {
    const fw = await world.addHost('fw', { public: 1 });
    await startHttp(fw, [22]);
    // fwknopd's host: SSH dropped but for the set fwknopd's command fills (nft only; fwknopd
    // itself is told of no firewall: with CMD_CYCLE_OPEN it runs just that command).
    await fw.check('nft', ['-f', '-'], {
      input:
        'table inet fwk {\n  set open4 { type ipv4_addr; flags timeout; }\n' +
        '  chain input { type filter hook input priority filter; policy accept;\n' +
        '    tcp dport 22 ip saddr @open4 accept\n    tcp dport 22 drop\n  }\n}\n',
    });
    const fwknopd = await startFwknopd(fw, world.dir, {
      port: SPA_PORT,
      clients: [ALICE],
      openCommand: '/usr/sbin/nft add element inet fwk open4 { $IP timeout 30s }',
    });
    assert.equal(await probe(from[0]!, fw.ip4), 'filtered');
    const r = await inet.runNode(CLI, [
      'knock',
      fw.ip4,
      '--spa',
      '--spa-keys',
      aliceKeys,
      '--bind',
      from[0]!,
    ]);
    assert.equal(r.code, 0, r.stderr);
    await opens(from[0]!, fw.ip4).catch((err: Error) => {
      throw new Error(`${err.message}\nfwknopd said:\n${fwknopdSaid(fwknopd)}`);
    });
    assert.equal(await probe(from[1]!, fw.ip4), 'filtered', 'opened for the sender only');
  });
});
