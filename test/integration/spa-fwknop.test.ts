// nonstop's SPA codec against the real fwknop 2.6 (Debian's fwknop-client and fwknop-server):
// packets the fwknop client sends decode here, and packets encodeSpa makes are accepted by
// fwknopd, which refuses tampered, replayed and stale ones as it would refuse fwknop's own.
//
// fwknopd runs as root in a network namespace made for the test, with its own configuration in
// a temporary folder. Its access stanzas use CMD_CYCLE_OPEN (`touch` a file), so fwknopd turns
// its firewall handling off altogether: it never runs iptables, even inside the namespace, and
// FIREWALL_EXE points at nothing to prove it. (Test mode, -t, would not do: it skips the replay
// cache, so a replay could not be shown.)
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { decodeSpa, encodeSpa, parseSpaKeyFile, type SpaKey } from '../../knock/spa.js';
import { SpaReplayCache, spaReplayLifetimeMs } from '../../knock/spa-replay.js';
import { FWKNOPD_LISTENING, writeFwknopdConfig } from '../../world/fwknopd.js';
import { tempDir } from '../helpers/files.js';
import { until } from '../helpers/until.js';

const run = promisify(execFile);

// Two outputs of `fwknop --key-gen`.
const ALICE = {
  key: 'pP9HwAQKYF0T4+3AfMpDeLzgRPP0NLZ/1gk7Ho1EDgI=',
  hmac: 'F9P3vLXvcv4VCFmhp0aR6scSDEL91zTabzaG3thP0bHB/PP+2P0DxENzqEu+nroOvgauOc5qhqT1iM4vpg+qbw==',
};
const BOB = {
  key: 'DSFYTx4AETMv38KN93dg4RihpXaj3HujBZavgn6j6Kw=',
  hmac: 'eJgC9VFPNGbLbGHRGJebAXOp5g0RA6VeFBwBz0Bw3aR4RY9av2R/QlqMBMukZUTE4z9pjWySCUEMeRs4NO51DA==',
};
const keyOf = (name: string, k: typeof ALICE): SpaKey =>
  parseSpaKeyFile(`KEY_BASE64: ${k.key}\nHMAC_KEY_BASE64: ${k.hmac}\n`, name);
const alice = keyOf('alice', ALICE);
const bob = keyOf('bob', BOB);

function which(cmd: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin']) {
    if (dir !== '' && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return undefined;
}

const FWKNOP = which('fwknop');
const FWKNOPD = which('fwknopd');
const clientSkip = FWKNOP === undefined ? 'fwknop is not installed (apt-get install fwknop-client)' : false;
const serverSkip =
  FWKNOPD === undefined
    ? 'fwknopd is not installed (apt-get install fwknop-server)'
    : process.getuid?.() !== 0
      ? 'fwknopd runs in a network namespace of its own, which needs root'
      : which('ip') === undefined
        ? 'iproute2 (ip) is not installed'
        : false;

/** Runs the fwknop client once and returns the datagram it sent to a loopback socket of ours. */
async function fwknopSends(t: TestContext, keys: typeof ALICE, args: string[]): Promise<Buffer> {
  const home = tempDir(t, 'nonstop-fwknop-home-');
  const sock = createSocket('udp4');
  t.after(() => sock.close());
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  const got = new Promise<Buffer>((resolve) => sock.once('message', resolve));
  await run(
    FWKNOP!,
    [
      '--no-rc-file',
      '--no-save-args',
      '-D',
      '127.0.0.1',
      '--server-port',
      String(sock.address().port),
      '--use-hmac',
      '--key-base64-rijndael',
      keys.key,
      '--key-base64-hmac',
      keys.hmac,
      ...args,
    ],
    { env: { ...process.env, HOME: home }, timeout: 10_000 },
  );
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error('fwknop sent nothing')), 5000).unref(),
  );
  const packet = await Promise.race([got, timeout]);
  assert.deepEqual(readdirSync(home), [], 'fwknop wrote nothing under $HOME');
  return packet;
}

test('the fwknop client → decodeSpa: every field of an access request', { skip: clientSkip }, async (t) => {
  const before = Math.floor(Date.now() / 1000);
  const packet = await fwknopSends(t, ALICE, ['-A', 'tcp/22', '-a', '192.0.2.7', '-U', 'nonstop-test']);
  const after = Math.floor(Date.now() / 1000);
  const r = decodeSpa(packet, [bob, alice]);
  assert.ok(r.ok, r.ok ? '' : `${r.reason}: ${r.detail}`);
  assert.equal(r.client, 'alice');
  const m = r.message;
  assert.match(m.randomValue, /^[0-9]{16}$/);
  assert.equal(m.username, 'nonstop-test');
  assert.ok(m.timestamp >= before && m.timestamp <= after, `timestamp ${m.timestamp}`);
  assert.equal(m.version, '3.0.0');
  assert.equal(m.messageType, 1);
  assert.equal(m.accessAddress, '192.0.2.7');
  assert.deepEqual(m.access, [{ protocol: 'tcp', port: 22 }]);
  assert.equal(m.clientTimeoutSeconds, undefined);

  // The same datagram again is a replay; a fresh fwknop run is not.
  const cache = new SpaReplayCache({ lifetimeMs: spaReplayLifetimeMs(120, 120), maxEntries: 10 });
  assert.equal(cache.admit(r.replayDigest, Date.now()), 'fresh');
  const again = decodeSpa(packet, [alice]);
  assert.ok(again.ok);
  assert.equal(cache.admit(again.replayDigest, Date.now()), 'replay');
  const next = decodeSpa(await fwknopSends(t, ALICE, ['-A', 'tcp/22', '-a', '192.0.2.7']), [alice]);
  assert.ok(next.ok);
  assert.equal(cache.admit(next.replayDigest, Date.now()), 'fresh');
});

test(
  'the fwknop client → decodeSpa: --fw-timeout, several ports, -s, and the other client',
  { skip: clientSkip },
  async (t) => {
    const timed = decodeSpa(
      await fwknopSends(t, BOB, ['-A', 'tcp/22,udp/53', '-a', '198.18.0.9', '--fw-timeout', '45']),
      [alice, bob],
    );
    assert.ok(timed.ok, timed.ok ? '' : `${timed.reason}: ${timed.detail}`);
    assert.equal(timed.client, 'bob');
    assert.equal(timed.message.messageType, 3);
    assert.equal(timed.message.clientTimeoutSeconds, 45);
    assert.equal(timed.message.accessAddress, '198.18.0.9');
    assert.deepEqual(timed.message.access, [
      { protocol: 'tcp', port: 22 },
      { protocol: 'udp', port: 53 },
    ]);

    const source = decodeSpa(await fwknopSends(t, ALICE, ['-A', 'tcp/2222', '-s']), [alice]);
    assert.ok(source.ok);
    assert.equal(source.message.accessAddress, '0.0.0.0');

    // Keys the guard does not know: refused at the HMAC.
    const stranger = decodeSpa(await fwknopSends(t, BOB, ['-A', 'tcp/22', '-a', '192.0.2.7']), [alice]);
    assert.equal(stranger.ok ? 'accepted' : stranger.reason, 'hmac');
  },
);

/** fwknopd in a namespace of its own; its log so far; a way to send it a datagram. */
async function startFwknopd(t: TestContext) {
  const dir = tempDir(t, 'nonstop-fwknopd-');
  const ns = `nonstop-spa-${randomUUID().slice(0, 8)}`;
  let stopDaemon = async () => {};
  await run('ip', ['netns', 'add', ns]);
  // One hook, so the order holds: the daemon stops, then its namespace goes.
  t.after(async () => {
    await stopDaemon();
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  });
  await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);

  const args = writeFwknopdConfig(dir, {
    port: 62201,
    clients: [
      { name: 'alice', key: ALICE.key, hmacKey: ALICE.hmac },
      { name: 'bob', key: BOB.key, hmacKey: BOB.hmac },
    ],
    openCommand: `/usr/bin/touch ${dir}/opened-%c-$IP-$PROTO-$PORT`,
  });
  let log = '';
  const daemon = spawn('ip', ['netns', 'exec', ns, FWKNOPD!, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  daemon.stdout.on('data', (b: Buffer) => (log += b.toString()));
  daemon.stderr.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  // `ip netns exec` execs fwknopd, so this pid is fwknopd's.
  stopDaemon = async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGTERM');
    await exited;
  };
  await until('fwknopd listening', () => log.includes(FWKNOPD_LISTENING), 10_000).catch((err: Error) => {
    throw new Error(`${err.message}\nfwknopd said:\n${log}`);
  });

  const send = (packet: Buffer) =>
    run('ip', [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      "const s = require('dgram').createSocket('udp4');" +
        "s.send(Buffer.from(process.argv[1], 'base64'), 62201, '127.0.0.1', (e) => { s.close(); if (e) throw e; });",
      packet.toString('base64'),
    ]);
  const count = (s: string) => log.split(s).length - 1;
  return { dir, send, count, log: () => log };
}

test(
  'encodeSpa → fwknopd: accepted; tampered, replayed and stale packets refused',
  { skip: serverSkip },
  async (t) => {
    const d = await startFwknopd(t);
    const opens = 'Running CMD_CYCLE_OPEN command';
    const waitFor = (what: string, n: number) =>
      until(`fwknopd to log "${what}" ×${n}`, () => d.count(what) >= n, 5000).catch((err: Error) => {
        throw new Error(`${err.message}\nfwknopd said:\n${d.log()}`);
      });
    // fwknopd logs "Running CMD_CYCLE_OPEN command" before the command it forks has run.
    const ran = (file: string) =>
      until(`the open command to make ${file}`, () => existsSync(join(d.dir, file)), 5000).catch(
        (err: Error) => {
          throw new Error(`${err.message}\nfwknopd said:\n${d.log()}`);
        },
      );

    const first = encodeSpa({ username: 'nonstop', accessAddress: '192.0.2.7', access: 'tcp/22' }, alice);
    await d.send(first);
    await waitFor(opens, 1);
    await ran('opened-alice-192.0.2.7-6-22');
    assert.match(d.log(), /Username: nonstop\n/);

    // The other client, with a client timeout and the packet's source address (0.0.0.0).
    const second = encodeSpa(
      { username: 'nonstop', accessAddress: '0.0.0.0', access: 'udp/53', clientTimeoutSeconds: 40 },
      bob,
    );
    await d.send(second);
    await waitFor(opens, 2);
    await ran('opened-bob-127.0.0.1-17-53');
    assert.match(d.log(), /Message Type: 3 \(Client timeout access msg\)\n/);
    assert.match(d.log(), /Client Timeout: 40\n/);

    // The first packet again: fwknopd's replay cache refuses it.
    await d.send(first);
    await waitFor('Replay detected from source IP: 127.0.0.1', 1);

    // One character changed: no stanza's HMAC matches (fwknopd tries both).
    const tampered = Buffer.from(first);
    tampered[40] = tampered[40] === 0x41 ? 0x42 : 0x41;
    await d.send(tampered);
    await waitFor('FKO_ERROR_INVALID_DATA_HMAC_COMPAREFAIL', 2);

    // Stamped five minutes ago: fwknopd's MAX_SPA_PACKET_AGE (120 s) refuses it.
    const stale = encodeSpa(
      { username: 'nonstop', accessAddress: '192.0.2.8', access: 'tcp/22' },
      alice,
      Date.now() - 300_000,
    );
    await d.send(stale);
    await waitFor('SPA data time difference is too great', 1);

    assert.equal(d.count(opens), 2, 'only the two genuine packets opened anything');
    assert.deepEqual(
      readdirSync(d.dir)
        .filter((f) => f.startsWith('opened-'))
        .sort(),
      ['opened-alice-192.0.2.7-6-22', 'opened-bob-127.0.0.1-17-53'],
    );
  },
);
