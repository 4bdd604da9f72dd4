// What crosses the tiers for ACME challenges served by several gateways behind one name: the
// ordering gateway's outbox (a key of its own queue's key space that it writes and each broker
// reads), the inbox a broker fills with what other gateways of the same name published (which
// the gateway may read and not write), their bounds, and the check every published answer
// passes before any broker relays it. A gateway's outbox is hostile-capable input.

/** One pending challenge's answer, as the ordering gateway publishes it. */
export interface RelayedAnswer {
  readonly type: 'http-01' | 'tls-alpn-01';
  /** The DNS name the challenge is for, lower case. */
  readonly identifier: string;
  readonly token: string;
  /** token + "." + base64url(SHA-256 JWK thumbprint) (RFC 8555, 8.1). */
  readonly keyAuthorization: string;
  /** Unix ms after which nobody answers it and nothing keeps it. */
  readonly expiresAt: number;
}

/** An outbox holds at most this many answers (a gateway orders a few names at a time). */
export const MAX_PUBLISHED_ANSWERS = 32;
/** …and is at most this long; a broker reads no more of it (GETRANGE) and refuses a longer one. */
export const MAX_OUTBOX_BYTES = 32 * 1024;
/**
 * The furthest expiresAt a broker accepts, from its own clock: a CA validates within seconds of
 * being told, so an answer relayed for longer only widens what a stolen outbox could do.
 */
export const MAX_ANSWER_LIFETIME_MS = 10 * 60_000;
/** What a gateway takes off that lifetime when it publishes, for clocks that disagree a little. */
export const CLOCK_SLACK_MS = 30_000;

/** The gateway's outbox: a JSON array of its answers (a string key, PXAT its last expiry). */
export function challengeOutboxKey(prefix: string, gatewayId: string): string {
  return `${prefix}:gw-${gatewayId}:acme-challenges`;
}

/**
 * The gateway's inbox: a hash, one field per gateway whose answers were relayed here (the
 * gateway itself included), each a JSON array of answers. Outside `<prefix>:gw-<id>:*`, so the
 * gateway's ACL grants it read access only (broker/redis-acl.ts).
 */
export function challengeInboxKey(prefix: string, gatewayId: string): string {
  return `${prefix}:acme-relayed:gw-${gatewayId}`;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const FIELDS = new Set(['type', 'identifier', 'token', 'keyAuthorization', 'expiresAt']);
/** A SHA-256 digest in unpadded base64url. */
const THUMBPRINT_CHARS = 43;

/** True for a DNS name (lower case, no trailing dot, no wildcard, not an IP address). */
export function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  if (labels.length < 2) return false;
  // An all-numeric last label would make 198.18.0.1 a "name".
  if (/^[0-9]+$/.test(labels.at(-1)!)) return false;
  return labels.every((l) => LABEL.test(l));
}

export type AnswerCheck =
  { readonly ok: true; readonly answer: RelayedAnswer } | { readonly ok: false; readonly reason: string };

/**
 * One published answer, checked field by field: the shape, that the key authorization is its
 * token's, that it is live and expires within MAX_ANSWER_LIFETIME_MS of `now`, and that its
 * name is one of `allowedNames` (what the broker's config says the publishing gateway serves).
 * A refusal's reason never quotes the key authorization.
 */
export function checkAnswer(
  value: unknown,
  allowedNames: ReadonlySet<string> | 'any',
  now: number,
  maxLifetimeMs: number = MAX_ANSWER_LIFETIME_MS,
): AnswerCheck {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, reason: 'not an object' };
  const v = value as Record<string, unknown>;
  const extra = Object.keys(v).find((k) => !FIELDS.has(k));
  if (extra !== undefined) return { ok: false, reason: 'a field no gateway writes' };
  const { type, identifier, token, keyAuthorization, expiresAt } = v;
  if (type !== 'http-01' && type !== 'tls-alpn-01')
    return { ok: false, reason: 'type is not http-01 or tls-alpn-01' };
  if (typeof identifier !== 'string' || !isDnsName(identifier.toLowerCase()))
    return { ok: false, reason: 'identifier is not a DNS name' };
  if (typeof token !== 'string' || token.length > 128 || !BASE64URL.test(token))
    return { ok: false, reason: 'token is not 1 to 128 base64url characters' };
  if (
    typeof keyAuthorization !== 'string' ||
    keyAuthorization.length !== token.length + 1 + THUMBPRINT_CHARS ||
    !keyAuthorization.startsWith(`${token}.`) ||
    !BASE64URL.test(keyAuthorization.slice(token.length + 1))
  )
    return {
      ok: false,
      reason: 'keyAuthorization is not the token, a dot and a base64url SHA-256 thumbprint',
    };
  if (typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt))
    return { ok: false, reason: 'expiresAt is not an integer' };
  if (expiresAt <= now) return { ok: false, reason: 'expired' };
  if (expiresAt > now + maxLifetimeMs)
    return { ok: false, reason: `expiresAt is more than ${maxLifetimeMs / 60_000} minutes ahead` };
  const name = identifier.toLowerCase();
  if (allowedNames !== 'any' && !allowedNames.has(name))
    return { ok: false, reason: 'the gateway does not serve this name' };
  return { ok: true, answer: { type, identifier: name, token, keyAuthorization, expiresAt } };
}

export interface OutboxCheck {
  /** The answers that passed, one per challenge (type and token), in a stable order. */
  readonly answers: RelayedAnswer[];
  /** Those refused, each with why (and nothing of its key authorization). */
  readonly refused: { readonly reason: string; readonly type?: string; readonly identifier?: string }[];
  /** Answers that had simply expired (the gateway prunes them later): not a refusal. */
  readonly expired: number;
}

/** A whole outbox as a broker read it (at most MAX_OUTBOX_BYTES + 1 bytes of it). */
export function checkOutbox(text: string, allowedNames: ReadonlySet<string>, now: number): OutboxCheck {
  const refused: OutboxCheck['refused'][number][] = [];
  if (Buffer.byteLength(text) > MAX_OUTBOX_BYTES)
    return {
      answers: [],
      refused: [{ reason: `the outbox is longer than ${MAX_OUTBOX_BYTES} bytes` }],
      expired: 0,
    };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { answers: [], refused: [{ reason: 'the outbox is not JSON' }], expired: 0 };
  }
  if (!Array.isArray(parsed))
    return { answers: [], refused: [{ reason: 'the outbox is not an array' }], expired: 0 };
  if (parsed.length > MAX_PUBLISHED_ANSWERS)
    return {
      answers: [],
      refused: [{ reason: `${parsed.length} answers (at most ${MAX_PUBLISHED_ANSWERS})` }],
      expired: 0,
    };
  const byChallenge = new Map<string, RelayedAnswer>();
  let expired = 0;
  for (const item of parsed) {
    const check = checkAnswer(item, allowedNames, now);
    if (check.ok) {
      const key = `${check.answer.type} ${check.answer.token}`;
      const seen = byChallenge.get(key);
      if (seen === undefined || seen.expiresAt < check.answer.expiresAt) byChallenge.set(key, check.answer);
    } else if (check.reason === 'expired') expired += 1;
    else refused.push({ reason: check.reason, ...describe(item) });
  }
  const answers = [...byChallenge.values()].sort((a, b) =>
    a.type === b.type ? (a.token < b.token ? -1 : a.token > b.token ? 1 : 0) : a.type < b.type ? -1 : 1,
  );
  return { answers, refused, expired };
}

/** What a refusal may say about the answer: its type and name, clipped; never its key authorization. */
function describe(item: unknown): { type?: string; identifier?: string } {
  if (typeof item !== 'object' || item === null) return {};
  const v = item as Record<string, unknown>;
  return {
    ...(typeof v.type === 'string' ? { type: v.type.slice(0, 16) } : {}),
    ...(typeof v.identifier === 'string' ? { identifier: v.identifier.slice(0, 253) } : {}),
  };
}

/**
 * An inbox field as the broker wrote it, read back by the gateway. Only brokers write it; the
 * gateway still takes only what has the shape (and no name check: the broker made that one).
 */
export function parseInboxField(text: string, now: number): RelayedAnswer[] {
  try {
    return relayedAnswers(JSON.parse(text), now);
  } catch {
    return [];
  }
}

/** The well-formed live answers of a list a broker relayed (read back, or across IPC). */
export function relayedAnswers(list: unknown, now: number): RelayedAnswer[] {
  if (!Array.isArray(list)) return [];
  const out: RelayedAnswer[] = [];
  for (const item of list.slice(0, MAX_PUBLISHED_ANSWERS)) {
    // The broker checked the lifetime by its own clock; this one may be a little behind.
    const check = checkAnswer(item, 'any', now, Number.MAX_SAFE_INTEGER);
    if (check.ok) out.push(check.answer);
  }
  return out;
}
