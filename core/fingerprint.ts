// What makes two keyed requests "the same request": SHA-256 over a canonical serialization of
// method, route, params, query, body and the client's identity digest (object keys sorted at
// every depth, so the order a client wrote its JSON in does not matter). The identity is the
// gateway's keyed digest of the identity headers, never their values; other headers, the
// client address and the gateway do not count.
import { createHash } from 'node:crypto';
import type { Envelope } from '../lib/envelope.js';

/** Hex SHA-256 of the request's canonical form. */
export function requestFingerprint(envelope: Envelope): string {
  const canonical = canonicalJson({
    method: envelope.method,
    route: envelope.route,
    params: envelope.params,
    query: envelope.query,
    body: envelope.body,
    identity: envelope.identity,
  });
  return createHash('sha256').update('nonstop/request-fingerprint/v1\0').update(canonical).digest('hex');
}

/** JSON with object keys in code-point order at every depth; arrays keep their order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
