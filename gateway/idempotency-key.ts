// The client's `Idempotency-Key` header (IETF httpapi draft "The Idempotency-Key HTTP Header
// Field"): checked here, then turned into the request id. The id is a function of the key alone,
// so a retry through any gateway, or after a gateway restart, is the same request to the core.
import { createHash } from 'node:crypto';
import { errors } from '../lib/errors.js';

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;

const KEY = /^[A-Za-z0-9._:~-]{1,128}$/;
/** Fixed domain separation: these ids can never collide with hashes of anything else. */
const DOMAIN = 'nonstop/idempotency-key/v1\0';

/**
 * The key of a request, or undefined when it has none. Accepts the bare token and the draft's
 * quoted sf-string form (`"abc"` is the key `abc`). Throws IDEMPOTENCY_KEY_INVALID otherwise,
 * repeated headers included.
 */
export function parseIdempotencyKey(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw invalid('send one Idempotency-Key header, not several');
  // Node joins a repeated header with ", ".
  if (value.includes(',')) throw invalid('send one Idempotency-Key header with one key');
  const quoted = value.length >= 2 && value.startsWith('"') && value.endsWith('"');
  const key = quoted ? value.slice(1, -1) : value;
  if (key.length === 0) throw invalid('the Idempotency-Key header is empty');
  if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw invalid(`the Idempotency-Key is ${key.length} characters; at most 128 are allowed`);
  }
  if (!KEY.test(key)) {
    throw invalid(
      'the Idempotency-Key may contain only letters, digits and . _ : ~ - (a UUID is a good key), optionally in double quotes',
    );
  }
  return key;
}

function invalid(message: string) {
  return errors.IDEMPOTENCY_KEY_INVALID(message);
}

/** The request id for a key: a version 8 UUID (RFC 9562) from SHA-256(domain ‖ key). */
export function requestIdForKey(key: string): string {
  const hash = createHash('sha256').update(DOMAIN).update(key, 'utf8').digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
