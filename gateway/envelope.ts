// Builds the envelope a gateway queues for an accepted request.
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { RouteDefinition } from '../config/schemas/routes.js';
import { ENVELOPE_VERSION, type BodyType, type Envelope } from '../lib/envelope.js';
import type { KeyedRequest } from './idempotency-key.js';

export const MAX_QUERY_PARAMS = 64;

export interface EnvelopeInput {
  readonly route: RouteDefinition;
  readonly path: string;
  readonly params: Record<string, string>;
  readonly query: Record<string, string | string[]>;
  readonly headers: IncomingHttpHeaders;
  readonly forwardHeaders: readonly string[];
  readonly body: unknown;
  /** How the body came, when not as JSON. */
  readonly bodyType?: BodyType | undefined;
  /** The Cookie header the route lets through (its cookies only). */
  readonly cookie?: string | undefined;
  readonly clientIp: string;
  readonly gatewayId: string;
  readonly replyTo: string;
  readonly now: number;
  readonly timeoutMs: number;
  /** Derived from the client's Idempotency-Key and identity (`IdempotencyScope.keyed`). */
  readonly keyed?: KeyedRequest | undefined;
}

export function buildEnvelope(input: EnvelopeInput): Envelope {
  return {
    v: ENVELOPE_VERSION,
    id: input.keyed?.id ?? randomUUID(),
    idempotent: input.keyed !== undefined,
    ...(input.keyed === undefined ? {} : { identity: input.keyed.identity }),
    route: input.route.name,
    method: input.route.method,
    path: input.path,
    params: input.params,
    query: input.query,
    headers: {
      ...pickHeaders(input.headers, input.forwardHeaders),
      ...(input.cookie === undefined ? {} : { cookie: input.cookie.slice(0, 8192) }),
    },
    body: input.body,
    ...(input.bodyType === undefined || input.bodyType === 'json' ? {} : { bodyType: input.bodyType }),
    clientIp: input.clientIp,
    gatewayId: input.gatewayId,
    replyTo: input.replyTo,
    receivedAt: input.now,
    deadline: input.now + input.timeoutMs,
  };
}

/** Only allow-listed headers travel; names are lower-case, repeated values are joined. */
export function pickHeaders(headers: IncomingHttpHeaders, allow: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of allow) {
    const value = headers[name];
    if (value === undefined) continue;
    out[name] = (Array.isArray(value) ? value.join(', ') : value).slice(0, 8192);
  }
  return out;
}

/**
 * Parses a query string into single values, or arrays for repeated keys. Returns null when
 * there are more than MAX_QUERY_PARAMS distinct keys.
 */
export function parseQuery(search: string): Record<string, string | string[]> | null {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  let count = 0;
  for (const [key, value] of new URLSearchParams(search)) {
    const existing = out[key];
    if (existing === undefined) {
      if (++count > MAX_QUERY_PARAMS) return null;
      out[key] = value;
    } else if (Array.isArray(existing)) {
      existing.push(value);
    } else {
      out[key] = [existing, value];
    }
  }
  return { ...out };
}
