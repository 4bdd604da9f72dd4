// The client's `Idempotency-Key` header (IETF httpapi draft "The Idempotency-Key HTTP Header
// Field"): checked here, then turned into the request id. A key names a request only within one
// identity (the values of the configured identity headers, `authorization` and `cookie` by
// default): the id is HMAC(deployment secret, identity ‖ key), the same on every gateway of the
// deployment and after a restart, and it reveals neither the key nor the identity.
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { errors } from '../lib/errors.js';

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;
export const DEFAULT_IDENTITY_HEADERS: readonly string[] = ['authorization', 'cookie'];

const KEY = /^[A-Za-z0-9._:~-]{1,128}$/;
/** Fixed domain separation: the two HMACs below can never be confused with each other. */
const ID_DOMAIN = 'nonstop/idempotency-key/v2\0';
const IDENTITY_DOMAIN = 'nonstop/idempotency-identity/v1\0';

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

/** What a keyed request's envelope carries: its id and the (keyed) digest of its identity. */
export interface KeyedRequest {
  readonly id: string;
  readonly identity: string;
}

/** Derives keyed request ids for one deployment: every gateway of it holds the same secret. */
export class IdempotencyScope {
  readonly #secret: Buffer;
  readonly #identityHeaders: readonly string[];

  constructor(secret: Buffer, identityHeaders: readonly string[] = DEFAULT_IDENTITY_HEADERS) {
    if (secret.length < 32) throw new RangeError('an idempotency secret has at least 32 bytes');
    this.#secret = Buffer.from(secret);
    this.#identityHeaders = [...new Set(identityHeaders.map((h) => h.toLowerCase()))].sort();
  }

  /** The id and identity digest of a request with this key and these headers. */
  keyed(key: string, headers: IncomingHttpHeaders): KeyedRequest {
    const identity = this.identity(headers);
    return { id: this.requestId(key, identity), identity };
  }

  /**
   * Hex HMAC-SHA256 of the identity headers' values (an absent header is not an empty one).
   * Keyed, so that whoever reads a queue or the core's tables cannot test guesses of a
   * password or a token against it.
   */
  identity(headers: IncomingHttpHeaders): string {
    const values = this.#identityHeaders.map((name) => [name, headers[name] ?? null]);
    return createHmac('sha256', this.#secret)
      .update(IDENTITY_DOMAIN)
      .update(JSON.stringify(values))
      .digest('hex');
  }

  /** The request id: a version 8 UUID (RFC 9562) from HMAC-SHA256(secret, identity ‖ key). */
  requestId(key: string, identity: string): string {
    const mac = createHmac('sha256', this.#secret)
      .update(ID_DOMAIN)
      .update(identity, 'utf8')
      .update('\0')
      .update(key, 'utf8')
      .digest();
    return uuidV8(mac.subarray(0, 16));
  }
}

function uuidV8(bytes: Buffer): string {
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
