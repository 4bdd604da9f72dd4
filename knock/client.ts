// Sends a knock sequence: one SYN per TCP step (a non-blocking connect that is abandoned, so
// no root is needed) and one datagram per UDP step, in order, with a short pause between.
// What knockd's own `knock` client does, so it works against knockd and against the guard.
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseKnockSequence, type KnockProfile, type KnockStep } from '../config/knock.js';
import { deriveSequence, timeStep } from './rotating.js';

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

function sendDatagram(address: string, port: number, localAddress: string | undefined): Promise<void> {
  const socket = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
  return new Promise((resolve) => {
    const send = () =>
      socket.send(Buffer.from([0]), port, address, () => {
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
