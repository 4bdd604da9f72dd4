// Rotating knock sequences: the ports for a time step come from HMAC-SHA256 keyed with the
// secret one client holds for one gateway. Both sides compute them; nothing is exchanged.
import { createHmac, randomBytes } from 'node:crypto';
import type { KnockStep, RotationParams } from '../config/knock.js';

export interface RotatingIdentity {
  readonly gateway: string;
  readonly client: string;
  /** base64url, 32 bytes. */
  readonly secret: string;
}

export function newKnockSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function timeStep(nowMs: number, stepSeconds: number): number {
  return Math.floor(nowMs / 1000 / stepSeconds);
}

/**
 * The sequence for one step: `length` distinct TCP ports in [portMin, portMax], chosen by
 * rejection sampling from HMAC blocks so every port is equally likely.
 */
export function deriveSequence(id: RotatingIdentity, step: number, params: RotationParams): KnockStep[] {
  const key = Buffer.from(id.secret, 'base64url');
  const span = params.portMax - params.portMin + 1;
  const limit = Math.floor(0x1_0000_0000 / span) * span;
  const ports: number[] = [];
  const stepBytes = Buffer.alloc(8);
  stepBytes.writeBigUInt64BE(BigInt(step));
  for (let block = 0; ports.length < params.length; block++) {
    if (block > 64) throw new Error('cannot derive distinct knock ports; widen the port range');
    const mac = createHmac('sha256', key)
      .update(`nonstop-knock-v1\0${id.gateway}\0${id.client}\0`)
      .update(stepBytes)
      .update(Buffer.from([block]))
      .digest();
    for (let i = 0; i + 4 <= mac.length && ports.length < params.length; i += 4) {
      const word = mac.readUInt32BE(i);
      if (word >= limit) continue;
      const port = params.portMin + (word % span);
      if (!ports.includes(port)) ports.push(port);
    }
  }
  return ports.map((port) => ({ port, protocol: 'tcp' }));
}
