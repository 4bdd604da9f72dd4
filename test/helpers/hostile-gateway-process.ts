// A hostile gateway (test/helpers/hostile-gateway.ts) in a process of its own, so that what it
// spends on flooding is not charged to the broker under test. Prints {"event":"listening","ssh":…}
// once, then takes one JSON command a line on stdin and answers each with one JSON line:
//   {"cmd":"flood-opens","inFlight":N,"ms":T}  channel opens, N in flight, for T ms
//   {"cmd":"flood-requests","ms":T}            global requests wanting a reply, as fast as it can
//   {"cmd":"flood-rekeys","ms":T}              key exchange after key exchange, for T ms
//   {"cmd":"burst","channels":N}               N channels at once, then closes those accepted
//   {"cmd":"pings","count":N,"intervalMs":I}   PING on one channel every I ms: round trips in ms
// Ends when stdin closes.
import { createInterface } from 'node:readline';
import type { Socket } from 'node:net';
import type { TestContext } from 'node:test';
import type ssh2 from 'ssh2';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHostileGateway, type ForwardedSession } from './hostile-gateway.js';

type Command =
  | { readonly cmd: 'flood-opens'; readonly inFlight: number; readonly ms: number }
  | { readonly cmd: 'flood-requests'; readonly ms: number }
  | { readonly cmd: 'flood-rekeys'; readonly ms: number }
  | { readonly cmd: 'burst'; readonly channels: number }
  | { readonly cmd: 'pings'; readonly count: number; readonly intervalMs: number };

/** The parts of ssh2's server connection a flood writes to directly. */
interface ConnectionInternals {
  readonly _sock: Socket;
  readonly _protocol: { ping(): void; _handlers: { REQUEST_FAILURE?: () => void } };
}

const cleanups: (() => unknown)[] = [];
const dir = mkdtempSync(join(tmpdir(), 'nonstop-hostile-'));
const t = { after: (fn: () => unknown) => void cleanups.push(fn) } as unknown as TestContext;
const gw = await startHostileGateway(t, dir);
console.log(JSON.stringify({ event: 'listening', ssh: gw.ssh }));

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function floodOpens(session: ForwardedSession, inFlight: number, ms: number) {
  let opened = 0;
  let accepted = 0;
  let refused = 0;
  /** Opens that were pending when the broker dropped the connection. */
  let lost = 0;
  const end = Date.now() + ms;
  // Tops up to `inFlight` unanswered opens every millisecond: as fast as the broker answers.
  while (Date.now() < end && !session.closed) {
    while (opened - accepted - refused - lost < inFlight) {
      opened += 1;
      gw.openChannel(session).then(
        (channel) => {
          accepted += 1;
          channel.close();
        },
        () => void (session.closed ? (lost += 1) : (refused += 1)),
      );
    }
    await sleep(1);
  }
  return { opened, accepted, refused, lost, unanswered: opened - accepted - refused - lost };
}

async function floodRequests(session: ForwardedSession, ms: number) {
  const conn = session.conn as unknown as ConnectionInternals;
  let sent = 0;
  let answered = 0;
  conn._protocol._handlers.REQUEST_FAILURE = () => void (answered += 1);
  const end = Date.now() + ms;
  while (Date.now() < end && !session.closed) {
    // Only as much as the socket takes: what the broker does not read waits in the kernel.
    if (conn._sock.writableLength < 256 * 1024) {
      for (let i = 0; i < 500; i++) conn._protocol.ping();
      sent += 500;
    }
    await new Promise<void>((r) => setImmediate(r));
  }
  return { sent, answered };
}

async function floodRekeys(session: ForwardedSession, ms: number) {
  let rekeys = 0;
  const end = Date.now() + ms;
  while (Date.now() < end && !session.closed) {
    const done = await Promise.race([
      new Promise<boolean>((r) => session.conn.rekey(() => r(true))),
      sleep(Math.max(0, end - Date.now())).then(() => false),
    ]);
    if (done) rekeys += 1;
  }
  return { rekeys };
}

async function burst(session: ForwardedSession, channels: number) {
  const started = performance.now();
  const outcomes = await Promise.allSettled(Array.from({ length: channels }, () => gw.openChannel(session)));
  const ms = performance.now() - started;
  const accepted = outcomes.filter((o) => o.status === 'fulfilled').map((o) => o.value);
  for (const c of accepted) c.close();
  return { accepted: accepted.length, refused: channels - accepted.length, ms };
}

async function pings(session: ForwardedSession, count: number, intervalMs: number) {
  const channel: ssh2.ServerChannel = await gw.openChannel(session);
  const rtts: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer through the tunnel in 5 s')), 5000);
      channel.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
      channel.write('PING\r\n');
    });
    rtts.push(performance.now() - started);
    await sleep(intervalMs);
  }
  channel.close();
  return { rtts };
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const command = JSON.parse(line) as Command;
  const session = await gw.session();
  try {
    const result =
      command.cmd === 'flood-opens'
        ? await floodOpens(session, command.inFlight, command.ms)
        : command.cmd === 'flood-requests'
          ? await floodRequests(session, command.ms)
          : command.cmd === 'flood-rekeys'
            ? await floodRekeys(session, command.ms)
            : command.cmd === 'burst'
              ? await burst(session, command.channels)
              : await pings(session, command.count, command.intervalMs);
    console.log(JSON.stringify({ event: 'done', cmd: command.cmd, connections: gw.connections, ...result }));
  } catch (err) {
    console.log(JSON.stringify({ event: 'failed', cmd: command.cmd, error: String(err) }));
  }
}
for (const fn of cleanups.reverse()) await fn();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
