// What crosses the tiers: the envelope a gateway queues for each request, the reply a broker
// sends back, and the names of the Redis keys both sides use. Data read from Redis is
// `unknown` until `parseEnvelope`/`parseReply` accept it.
import { isIP } from 'node:net';
import { createAjv } from '../config/ajv.js';
import type { HttpMethod } from '../config/schemas/routes.js';

export const ENVELOPE_VERSION = 1;

export interface Envelope {
  readonly v: typeof ENVELOPE_VERSION;
  /** Request id (UUID); also the job id and the core's idempotency key. */
  readonly id: string;
  /**
   * True when `id` was derived from the client's Idempotency-Key (a version 8 UUID): the core
   * then replays its answer to the same request from any gateway. Absent means false.
   */
  readonly idempotent?: boolean;
  /**
   * Keyed requests only: hex HMAC of the client's identity headers under the deployment's
   * secret. Part of the core's request fingerprint; the values themselves never leave the gateway.
   */
  readonly identity?: string;
  readonly route: string;
  readonly method: HttpMethod;
  readonly path: string;
  readonly params: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string | string[]>>;
  readonly headers: Readonly<Record<string, string>>;
  /**
   * The request body as a JSON value, or null when the request had none: a JSON body parsed; a
   * form (`application/x-www-form-urlencoded`) as an object of strings (a repeated name: an
   * array); `text/plain` as a string; `multipart/form-data` as an object whose file parts are
   * `UploadedFile`s. The route's JSON Schema validates it whatever it came as.
   */
  readonly body: unknown;
  /** How the client sent the body (absent: json). An upstream application gets it re-encoded so. */
  readonly bodyType?: BodyType;
  readonly clientIp: string;
  readonly gatewayId: string;
  /** Gateway process that waits for the reply; names its reply stream. */
  readonly replyTo: string;
  /** When the gateway received the request (ms since epoch). */
  readonly receivedAt: number;
  /** When the gateway stops waiting (ms since epoch); work after it is wasted. */
  readonly deadline: number;
}

/** What a client can send a body as. */
export type BodyType = 'json' | 'form' | 'text' | 'multipart';
export const BODY_TYPES: readonly BodyType[] = ['json', 'form', 'text', 'multipart'];

/** A file part of a multipart/form-data body, as the envelope carries it. */
export interface UploadedFile {
  readonly filename: string;
  /** Its declared media type (the part's Content-Type; application/octet-stream if none). */
  readonly type: string;
  readonly size: number;
  readonly base64: string;
}

/** A response body that is not JSON: its media type and its bytes. */
export interface ReplyContent {
  /** The Content-Type to send, e.g. `text/html; charset=utf-8`. */
  readonly type: string;
  readonly base64: string;
}

/** A reply carries at most this many cookies, each at most MAX_COOKIE_BYTES. */
export const MAX_REPLY_COOKIES = 16;
export const MAX_COOKIE_BYTES = 4096;

export interface Reply {
  /** The request id this answers. */
  readonly id: string;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** JSON body, or null for an empty one (and when `content` carries the body). */
  readonly body: unknown;
  /** A body of any other type; with it, `body` is null. */
  readonly content?: ReplyContent;
  /** Set-Cookie values, each sent as a header of its own. */
  readonly cookies?: readonly string[];
  /** The core answered from its record of an earlier execution (nothing ran again). */
  readonly replayed?: boolean;
}

const TOKEN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$';
const UUID = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

const envelopeSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'v',
    'id',
    'route',
    'method',
    'path',
    'params',
    'query',
    'headers',
    'body',
    'clientIp',
    'gatewayId',
    'replyTo',
    'receivedAt',
    'deadline',
  ],
  properties: {
    v: { const: ENVELOPE_VERSION },
    id: { type: 'string', pattern: UUID },
    idempotent: { type: 'boolean' },
    identity: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    route: { type: 'string', maxLength: 128 },
    method: { enum: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] },
    path: { type: 'string', maxLength: 8192 },
    params: {
      type: 'object',
      maxProperties: 32,
      propertyNames: { maxLength: 64 },
      additionalProperties: { type: 'string', maxLength: 2048 },
    },
    query: {
      type: 'object',
      maxProperties: 64,
      propertyNames: { maxLength: 128 },
      additionalProperties: {
        anyOf: [
          { type: 'string', maxLength: 4096 },
          { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 4096 } },
        ],
      },
    },
    headers: {
      type: 'object',
      maxProperties: 64,
      propertyNames: { pattern: '^[a-z0-9-]{1,64}$' },
      additionalProperties: { type: 'string', maxLength: 8192 },
    },
    body: {},
    bodyType: { enum: BODY_TYPES },
    clientIp: { type: 'string', minLength: 2, maxLength: 64 },
    gatewayId: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
    replyTo: { type: 'string', pattern: TOKEN },
    receivedAt: { type: 'integer', minimum: 0 },
    deadline: { type: 'integer', minimum: 0 },
  },
} as const;

const replySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'status', 'headers', 'body'],
  properties: {
    id: { type: 'string', pattern: UUID },
    status: { type: 'integer', minimum: 100, maximum: 599 },
    headers: {
      type: 'object',
      maxProperties: 32,
      propertyNames: { pattern: '^[a-z0-9-]{1,64}$' },
      additionalProperties: { type: 'string', maxLength: 8192 },
    },
    body: {},
    content: {
      type: 'object',
      additionalProperties: false,
      required: ['type', 'base64'],
      properties: {
        type: { type: 'string', minLength: 3, maxLength: 256, pattern: '^[\\x21-\\x7e][\\x20-\\x7e]*$' },
        base64: { type: 'string', pattern: '^[A-Za-z0-9+/]*={0,2}$' },
      },
    },
    cookies: {
      type: 'array',
      maxItems: MAX_REPLY_COOKIES,
      items: { type: 'string', minLength: 1, maxLength: MAX_COOKIE_BYTES, pattern: '^[\\x20-\\x7e]+$' },
    },
    replayed: { type: 'boolean' },
  },
} as const;

// Envelopes are checked without schema strictness for `body: {}` (any JSON); its content is
// checked against the route's own schema afterwards.
const ajv = createAjv({ strict: false });
const validateEnvelope = ajv.compile<Envelope>(envelopeSchema);
const validateReply = ajv.compile<Reply>(replySchema);

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

export function parseEnvelope(data: unknown): Parsed<Envelope> {
  if (validateEnvelope(data)) {
    // The gateway's view of its client's socket: an IPv4 or IPv6 address, nothing else.
    if (isIP(data.clientIp) === 0) return { ok: false, error: '/clientIp is not an IP address' };
    return { ok: true, value: data };
  }
  const e = validateEnvelope.errors?.[0];
  return { ok: false, error: e ? `${e.instancePath || '(envelope)'} ${e.message ?? e.keyword}` : 'invalid' };
}

export function parseReply(data: unknown): Parsed<Reply> {
  if (validateReply(data)) return { ok: true, value: data };
  const e = validateReply.errors?.[0];
  return { ok: false, error: e ? `${e.instancePath || '(reply)'} ${e.message ?? e.keyword}` : 'invalid' };
}

/** A request id's UUID version: 8 for ids derived from an Idempotency-Key, 4 for random ones. */
export function uuidVersion(id: string): number {
  return Number.parseInt(id.charAt(14), 16);
}

/** The id and the `idempotent` flag agree: keyed ids are version 8, random ones are not. */
export function idMatchesKind(envelope: Envelope): boolean {
  return (uuidVersion(envelope.id) === 8) === (envelope.idempotent === true);
}

/** The BullMQ queue a gateway feeds. */
export function queueName(gatewayId: string): string {
  return `gw-${gatewayId}`;
}

/**
 * The Redis stream a gateway process reads its replies from, one entry per reply with the reply's
 * JSON in REPLY_FIELD. It lies inside the gateway's own queue key space (`<prefix>:gw-<id>:*`),
 * so one ACL pattern confines a gateway to its keys. A stream, not a list: reading does not
 * remove, so replies a dropped link swallowed are read again (gateway/reply-waiter.ts).
 */
export const REPLY_FIELD = 'reply';
/**
 * A gateway process pops at most this many replies per read, and no reply is larger than
 * MAX_REPLY_BYTES (the broker answers 502 instead): together they size the output buffer a
 * gateway's Redis lets one client hold (broker/redis-config.ts), so a batch of legitimate
 * replies can never get the reading connection dropped.
 */
export const REPLY_BATCH = 16;
export const MAX_REPLY_BYTES = 5 * 1024 * 1024;

export function replyKey(prefix: string, gatewayId: string, replyTo: string): string {
  return `${prefix}:${queueName(gatewayId)}:reply:${replyTo}`;
}
