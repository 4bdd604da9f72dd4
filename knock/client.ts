// Sends a knock sequence: one SYN per TCP step (a non-blocking connect that is abandoned, so
// no root is needed) and one datagram per UDP step, in order, with a short pause between.
// What knockd's own `knock` client does, so it works against knockd and against the guard.
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP, Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { userInfo } from 'node:os';
import { parseKnockSequence, type KnockProfile, type KnockStep } from '../config/knock.js';
import { deriveSequence, timeStep } from './rotating.js';
import { encodeSpa, type SpaKey } from './spa.js';

export interface SendKnockOptions {
  /** Pause between steps, ms. */
  readonly delayMs?: number;
  /** Source address to send from. */
  readonly localAddress?: string;
}

/** Resolves a gateway name once, so that every step and the SSH connection go to one address. */
export async function resolveGateway(host: string): Promise<string> {
  if (isIP(host) !== 0) return host;
  return (await lookup(host)).address;
}

export function profileSequence(profile: KnockProfile, nowMs = Date.now()): KnockStep[] {
  if (profile.rotating !== undefined) {
    const r = profile.rotating;
    return deriveSequence(r, timeStep(nowMs, r.stepSeconds), r);
  }
  return parseKnockSequence(profile.sequence ?? []);
}

/** An SPA packet to send: where, with which keys, asking what. */
export interface SpaKnock {
  /** The guard's (or fwknopd's) UDP port. */
  readonly port: number;
  readonly key: SpaKey;
  /** The address the packet asks to open; 0.0.0.0 (the default): the one it is sent from. */
  readonly allow?: string;
  /** The SSH port it asks for. */
  readonly sshPort: number;
}

/** The user name an SPA packet carries (fwknop sends the local login; the guard only logs it). */
function spaUsername(): string {
  try {
    const name = userInfo().username;
    if (/^[A-Za-z0-9._-]{1,64}$/.test(name)) return name;
  } catch {
    // no passwd entry (a container's uid): fall through
  }
  return 'nonstop';
}

/** Sends one SPA packet: a fresh random value and timestamp each time, so it is never a replay. */
export function sendSpa(address: string, spa: SpaKnock, options: SendKnockOptions = {}): Promise<void> {
  const packet = encodeSpa(
    { username: spaUsername(), accessAddress: spa.allow ?? '0.0.0.0', access: `tcp/${spa.sshPort}` },
    spa.key,
  );
  return sendDatagram(address, spa.port, options.localAddress, packet);
}

/** The SPA request a profile describes, or undefined for a sequence profile. */
export function profileSpa(profile: KnockProfile, name = 'profile'): SpaKnock | undefined {
  const spa = profile.spa;
  if (spa === undefined) return undefined;
  return {
    port: spa.port,
    sshPort: profile.sshPort,
    key: { name, encryptionKey: Buffer.from(spa.key, 'base64'), hmacKey: Buffer.from(spa.hmacKey, 'base64') },
    ...(spa.allow === undefined ? {} : { allow: spa.allow }),
  };
}

export async function sendKnock(
  address: string,
  steps: readonly KnockStep[],
  options: SendKnockOptions = {},
) {
  const delayMs = options.delayMs ?? 30;
  for (const [i, step] of steps.entries()) {
    if (i > 0 && delayMs > 0) await sleep(delayMs);
    if (step.protocol === 'udp') await sendDatagram(address, step.port, options.localAddress);
    else await sendSyn(address, step.port, options.localAddress);
  }
}

async function sendSyn(address: string, port: number, localAddress: string | undefined): Promise<void> {
  const socket = new Socket();
  socket.on('error', () => {}); // refused or unreachable: the SYN went out, that is all we need
  socket.connect({ host: address, port, ...(localAddress !== undefined ? { localAddress } : {}) });
  // connect(2) runs on the next turn of the loop; give it a moment, then abandon the attempt
  // before the kernel retransmits (closing a half-open connection sends nothing).
  await sleep(5);
  socket.destroy();
}

function sendDatagram(
  address: string,
  port: number,
  localAddress: string | undefined,
  payload: Buffer = Buffer.from([0]),
): Promise<void> {
  const socket = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
  return new Promise((resolve) => {
    const send = () =>
      socket.send(payload, port, address, () => {
        socket.close();
        resolve();
      });
    socket.on('error', () => {
      socket.close();
      resolve();
    });
    if (localAddress !== undefined) socket.bind({ address: localAddress, port: 0 }, send);
    else send();
  });
}

/** Where `nonstop knock --proxy` connects: HOST:PORT, [V6]:PORT, or a bare V6 address then :PORT. */
export function parseProxyTarget(text: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:([0-9]{1,5})$/.exec(text) ?? /^([^[\]]+):([0-9]{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (m === null || m[1] === '' || !(port >= 1 && port <= 65535))
    throw new Error(`expected HOST:PORT or [IPV6]:PORT with a port 1-65535, got "${text}"`);
  const host = m[1]!;
  // An unbracketed host with colons must be a whole IPv6 address (ssh's %h:%p for a v6 host).
  if (host.includes(':') && isIP(host) !== 6) throw new Error(`"${host}" is not an IPv6 address`);
  return { host, port };
}

export interface ProxyConnectOptions {
  /** Connection attempts before giving up (each after a fresh knock, when `knock` is given). */
  readonly attempts?: number;
  /** How long one attempt may take: a filtered port drops the SYN, it never refuses. */
  readonly connectTimeoutMs?: number;
  /** Pause before every attempt: the guard opens its window a moment after the last step. */
  readonly waitMs?: number;
  readonly localAddress?: string;
  /** Sends the knock; called before every attempt. */
  readonly knock?: () => Promise<void>;
  /** Told about each failed attempt (the CLI writes it on stderr). */
  readonly onRetry?: (attempt: number, err: Error) => void;
}

/** Knocks and connects, again up to `attempts` times; resolves with the connected socket. */
export async function connectAfterKnock(
  host: string,
  port: number,
  options: ProxyConnectOptions = {},
): Promise<Socket> {
  const attempts = options.attempts ?? 5;
  let last: Error = new Error('no attempt made');
  for (let attempt = 1; attempt <= attempts; attempt++) {
    await options.knock?.();
    await sleep(options.waitMs ?? 200);
    try {
      return await connectOnce(host, port, options.connectTimeoutMs ?? 3000, options.localAddress);
    } catch (err) {
      last = err as Error;
      if (attempt < attempts) options.onRetry?.(attempt, last);
    }
  }
  throw last;
}

function connectOnce(host: string, port: number, timeoutMs: number, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no answer within ${timeoutMs} ms`)));
    socket.once('error', fail);
    socket.connect({ host, port, ...(localAddress !== undefined ? { localAddress } : {}) }, () => {
      socket.setTimeout(0);
      socket.off('error', fail);
      resolve(socket);
    });
  });
}

/**
 * Carries a connection on a pair of streams, as `nc` does for ssh's ProxyCommand: input to the
 * socket, the socket to output. End of input half-closes the socket; the socket's close (or an
 * error on either side) ends it. Resolves with the error that ended it, if one did.
 */
export function carry(socket: Socket, input: Readable, output: Writable): Promise<Error | undefined> {
  return new Promise((resolve) => {
    let failure: Error | undefined;
    const stop = (err?: Error) => {
      failure ??= err;
      input.unpipe(socket);
      socket.destroy();
    };
    socket.once('close', () => {
      input.unpipe(socket);
      input.pause();
      resolve(failure);
    });
    socket.on('error', (err) => stop(err));
    output.on('error', (err) => stop(err));
    input.on('error', (err) => stop(err));
    // pipe() ends the socket (a FIN) when input ends; the peer then closes its side.
    input.pipe(socket);
    socket.pipe(output, { end: false });
  });
}
