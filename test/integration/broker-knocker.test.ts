// The broker's knock before each SSH connection sends exactly the sequence its gateway's
// guard expects: the static steps in order, or the rotating ports of the current time step
// for this broker's secret. Observed with listeners on loopback.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import pino from 'pino';
import { knockerFor } from '../../broker/knocker.js';
import type { Logger } from '../../lib/log.js';
import { freePort } from '../../lib/free-port.js';
import { isNonstopError } from '../../lib/errors.js';
import { deriveSequence, newKnockSecret, timeStep } from '../../knock/rotating.js';
import { decodeSpa, formatSpaKeyFile, generateSpaKeys } from '../../knock/spa.js';
import { tempDir } from '../helpers/files.js';

/** Records, in order, which of the given TCP ports saw a connection attempt. */
async function tcpRecorder(
  t: TestContext,
  ports: number[],
  seen: string[],
  host = '127.0.0.1',
): Promise<void> {
  const servers: Server[] = [];
  for (const port of ports) {
    const server = createServer((socket) => {
      seen.push(`${port}/tcp`);
      socket.destroy();
    });
    const close = () => Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, resolve);
      });
    } catch (err) {
      await close();
      throw err;
    }
    servers.push(server);
  }
  t.after(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));
}

const settle = () => new Promise((r) => setTimeout(r, 200));

test('a static sequence is sent step by step, TCP and UDP, in order', async (t) => {
  const [a, b, c] = [await freePort(), await freePort(), await freePort()];
  const seen: string[] = [];
  await tcpRecorder(t, [a, c], seen);
  const udp = createSocket('udp4');
  udp.on('message', () => seen.push(`${b}/udp`));
  await new Promise<void>((resolve) => udp.bind(b, '127.0.0.1', resolve));
  t.after(() => udp.close());

  await knockerFor('gw1', { delayMs: 20, sequence: [`${a}`, `${b}:udp`, `${c}:tcp`] }).knock('127.0.0.1');
  await settle();
  assert.deepEqual(seen, [`${a}/tcp`, `${b}/udp`, `${c}/tcp`]);
});

test('an IPv6 gateway address is knocked over IPv6, TCP and UDP', async (t) => {
  const [a, b, c] = [await freePort(), await freePort(), await freePort()];
  const seen: string[] = [];
  // Listeners on ::1 only (IPv6-only): a knock sent over IPv4 would reach none of them.
  await tcpRecorder(t, [a, c], seen, '::1');
  const udp = createSocket({ type: 'udp6', ipv6Only: true });
  udp.on('message', (_msg, from) => seen.push(`${b}/udp from ${from.address}`));
  await new Promise<void>((resolve) => udp.bind(b, '::1', resolve));
  t.after(() => udp.close());

  await knockerFor('gw1', { delayMs: 20, sequence: [`${a}`, `${b}:udp`, `${c}`] }).knock('::1');
  await settle();
  assert.deepEqual(seen, [`${a}/tcp`, `${b}/udp from ::1`, `${c}/tcp`]);
});

test('a gateway name is knocked at one of its addresses, and that address is what the tunnel dials', async (t) => {
  const port = await freePort();
  const seen: string[] = [];
  await tcpRecorder(t, [port], seen, '127.0.0.1');
  const dialled = await knockerFor('gw1', { delayMs: 0, sequence: [`${port}`] }).knock('localhost');
  // localhost may resolve to ::1 first; whichever was knocked is the one returned.
  assert.ok(['127.0.0.1', '::1'].includes(dialled), dialled);
  await settle();
  if (dialled === '127.0.0.1') assert.deepEqual(seen, [`${port}/tcp`]);
  else assert.deepEqual(seen, [], 'knocked over IPv6: nothing reached the IPv4 listener');
});

test('a rotating sequence sends the ports the guard derives for this broker and time step', async (t) => {
  const dir = tempDir(t);
  const secretFile = join(dir, 'gw1.knock');
  // An hour-long step, so the test cannot straddle a step boundary.
  const rotation = { portMin: 41000, portMax: 41999, length: 4, stepSeconds: 3600 };
  // The range lies among the ephemeral ports: a port another process holds means a new secret.
  let secret: string;
  let expected: number[];
  const seen: string[] = [];
  for (let tries = 0; ; tries++) {
    secret = newKnockSecret();
    expected = deriveSequence(
      { gateway: 'gw1', client: 'broker1', secret },
      timeStep(Date.now(), rotation.stepSeconds),
      rotation,
    ).map((s) => s.port);
    try {
      await tcpRecorder(t, expected, seen);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || tries === 9) throw err;
    }
  }
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });

  await knockerFor('gw1', { delayMs: 20, rotating: { ...rotation, client: 'broker1', secretFile } }).knock(
    '127.0.0.1',
  );
  await settle();
  assert.deepEqual(
    seen,
    expected.map((p) => `${p}/tcp`),
  );
  // Another gateway's sequence from the same secret differs: secrets are per gateway.
  const other = deriveSequence(
    { gateway: 'gw2', client: 'broker1', secret },
    timeStep(Date.now(), 3600),
    rotation,
  );
  assert.notDeepEqual(
    other.map((s) => s.port),
    expected,
  );
});

test('a rotated secret file is knocked with from the next knock on; a broken one keeps the last', async (t) => {
  const dir = tempDir(t);
  const secretFile = join(dir, 'gw1.knock');
  const rotation = { portMin: 41000, portMax: 41999, length: 4, stepSeconds: 3600 };
  // Fixed secrets: the old one, and the one it is rotated to.
  const OLD = 'b2xkLW9sZC1vbGQtb2xkLW9sZC1vbGQtb2xkLW9sZC0';
  const NEW = 'bmV3LW5ldy1uZXctbmV3LW5ldy1uZXctbmV3LW5ldy0';
  const portsOf = (secret: string) =>
    deriveSequence({ gateway: 'gw1', client: 'b1', secret }, timeStep(Date.now(), 3600), rotation).map(
      (s) => s.port,
    );
  const seen: string[] = [];
  await tcpRecorder(t, [...new Set([...portsOf(OLD), ...portsOf(NEW)])], seen);
  writeFileSync(secretFile, `${OLD}\n`, { mode: 0o600 });
  const { log, lines } = capturingLogger();
  const knocker = knockerFor(
    'gw1',
    { delayMs: 20, rotating: { ...rotation, client: 'b1', secretFile } },
    log,
  );
  const knocked = async () => {
    seen.length = 0;
    await knocker.knock('127.0.0.1');
    await settle();
    return seen.map((p) => Number(p.split('/')[0]));
  };
  assert.deepEqual(await knocked(), portsOf(OLD));
  writeFileSync(secretFile, `${NEW}\n`);
  assert.deepEqual(await knocked(), portsOf(NEW), 'the new secret, without a restart');
  writeFileSync(secretFile, 'not a secret');
  assert.deepEqual(await knocked(), portsOf(NEW), 'a broken file: the last good secret');
  const warned = lines.filter((l) => l.event === 'knock-secret-unreadable');
  assert.equal(warned.length, 1);
  assert.doesNotMatch(JSON.stringify(warned), /not a secret/, "the file's content is not logged");
});

test('a missing or malformed secret file fails at start, naming it', (t) => {
  const dir = tempDir(t);
  const rotating = { portMin: 20000, portMax: 29999, length: 4, stepSeconds: 30, client: 'broker1' };
  assert.throws(
    () => knockerFor('gw1', { delayMs: 0, rotating: { ...rotating, secretFile: join(dir, 'absent') } }),
    (err) => isNonstopError(err) && /secretFile: cannot read .*absent/.test(err.message),
  );
  const bad = join(dir, 'bad');
  writeFileSync(bad, 'hunter2');
  assert.throws(
    () => knockerFor('gw1', { delayMs: 0, rotating: { ...rotating, secretFile: bad } }),
    (err) =>
      isNonstopError(err) && /not a knock secret/.test(err.message) && !err.message.includes('hunter2'),
  );
});

/** A logger that keeps its lines, parsed. */
function capturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'info' },
    { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  return { log, lines };
}

test('after three rotating knocks in a row that SSH did not answer, one line names the clock', (t) => {
  const dir = tempDir(t);
  const secretFile = join(dir, 'gw1.knock');
  writeFileSync(secretFile, newKnockSecret());
  const { log, lines } = capturingLogger();
  const rotation = { portMin: 20000, portMax: 29999, length: 4, stepSeconds: 30 };
  const knocker = knockerFor('gw1', { delayMs: 0, rotating: { ...rotation, client: 'b1', secretFile } }, log);
  const hints = () => lines.filter((l) => l.event === 'knock-unanswered');
  knocker.sshAnswered?.(false);
  knocker.sshAnswered?.(false);
  assert.equal(hints().length, 0, 'two misses may be a lost packet');
  knocker.sshAnswered?.(false);
  assert.equal(hints().length, 1);
  assert.match(String(hints()[0]!.msg), /more than 30 s off.*fix the clock \(NTP\)/);
  assert.equal(hints()[0]!.toleranceSeconds, 30);
  for (let i = 0; i < 20; i++) knocker.sshAnswered?.(false);
  assert.equal(hints().length, 1, 'once, not per attempt');
  // SSH answered: the count starts again, and a new run of misses is said again, once.
  knocker.sshAnswered?.(true);
  for (let i = 0; i < 5; i++) knocker.sshAnswered?.(false);
  assert.equal(hints().length, 2);
});

test('a static sequence that SSH does not answer is not blamed on the clock', () => {
  const { log, lines } = capturingLogger();
  const knocker = knockerFor('gw1', { delayMs: 0, sequence: ['7000', '8000'] }, log);
  for (let i = 0; i < 4; i++) knocker.sshAnswered?.(false);
  const hints = lines.filter((l) => l.event === 'knock-unanswered');
  assert.equal(hints.length, 1);
  assert.doesNotMatch(String(hints[0]!.msg), /clock/);
});

test('an SPA knock is one fresh packet per connection, for its SSH port, from the key file', async (t) => {
  const dir = tempDir(t);
  const keyFile = join(dir, 'gw1.spa');
  const key = generateSpaKeys('b1');
  writeFileSync(keyFile, formatSpaKeyFile(key));
  const udp = createSocket('udp4');
  const got: Buffer[] = [];
  udp.on('message', (m) => got.push(m));
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  t.after(() => udp.close());
  const knocker = knockerFor(
    'gw1',
    { delayMs: 0, spa: { port: udp.address().port, keyFile } },
    undefined,
    2222,
  );
  assert.equal(await knocker.knock('127.0.0.1'), '127.0.0.1');
  assert.equal(await knocker.knock('127.0.0.1'), '127.0.0.1');
  await settle();
  assert.equal(got.length, 2);
  const decoded = got.map((p) => decodeSpa(p, [key]));
  for (const d of decoded) {
    assert.ok(d.ok, d.ok ? '' : d.detail);
    assert.equal(d.message.accessAddress, '0.0.0.0', 'asks for the address it comes from');
    assert.deepEqual(d.message.access, [{ protocol: 'tcp', port: 2222 }]);
  }
  const [first, second] = decoded;
  assert.ok(first?.ok && second?.ok && first.replayDigest !== second.replayDigest, 'never the same packet');
  // Rotated (README, "Rotating credentials"): the next knock uses the new keys; a file broken
  // meanwhile keeps the last good ones, with a warning.
  const next = generateSpaKeys('b1-next');
  writeFileSync(keyFile, formatSpaKeyFile(next));
  await knocker.knock('127.0.0.1');
  writeFileSync(keyFile, 'KEY_BASE64: half-written');
  await knocker.knock('127.0.0.1');
  await settle();
  assert.equal(got.length, 4);
  for (const p of got.slice(2)) {
    assert.equal(decodeSpa(p, [key]).ok, false, 'not the old keys any more');
    assert.ok(decodeSpa(p, [next]).ok, 'the new keys');
  }
  // A key file that is not one fails at start, naming it, and never shows its text.
  const bad = join(dir, 'bad.spa');
  writeFileSync(bad, 'KEY_BASE64: hunter2\n');
  assert.throws(
    () => knockerFor('gw1', { delayMs: 0, spa: { port: 62201, keyFile: bad } }),
    (err) => isNonstopError(err) && err.message.includes(bad) && !err.message.includes('hunter2'),
  );
  assert.throws(
    () => knockerFor('gw1', { delayMs: 0, spa: { port: 62201, keyFile: join(dir, 'absent') } }),
    (err) => isNonstopError(err) && /spa\.keyFile: cannot read .*absent/.test(err.message),
  );
});
