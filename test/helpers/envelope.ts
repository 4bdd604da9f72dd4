// Envelopes as a gateway would queue them, for tests of the tiers that consume them.
import { randomUUID } from 'node:crypto';
import { ENVELOPE_VERSION, type Envelope } from '../../lib/envelope.js';

/** A valid envelope for `route`; `deadline` is a minute away unless given. */
export function makeEnvelope(
  overrides: Partial<Envelope> & Pick<Envelope, 'route' | 'method' | 'path'>,
): Envelope {
  const now = Date.now();
  return {
    v: ENVELOPE_VERSION,
    id: randomUUID(),
    params: {},
    query: {},
    headers: {},
    body: null,
    clientIp: '198.18.0.10',
    gatewayId: 'gw1',
    replyTo: 'gw1-test',
    receivedAt: now,
    deadline: now + 60_000,
    ...overrides,
  };
}

/**
 * What a compromised gateway `gatewayId` queues for POST /notes as a real one would (deadline
 * within the reply timeout a broker knows for it), with `over` laid on top.
 */
export function forgedNotesEnvelope(
  gatewayId: string,
  over: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    ...makeEnvelope({
      route: 'notes.create',
      method: 'POST',
      path: '/notes',
      body: { title: 'forged' },
      clientIp: '198.18.0.66',
      gatewayId,
      replyTo: 'attacker',
      deadline: Date.now() + 5000,
    }),
    ...over,
  };
}
