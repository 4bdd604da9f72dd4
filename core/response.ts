// A handler's answer in the form the core stores and returns: status 100–599, lowercase header
// names (as the broker's Reply requires), a body that survived a JSON round trip or a non-JSON
// `content` (media type and base64), and checked Set-Cookie values, so an executed answer and
// its later replays are the same value.
import { MAX_COOKIE_BYTES, MAX_REPLY_COOKIES, type ReplyContent } from '../lib/envelope.js';
import type { NonstopError } from '../lib/errors.js';
import type { Row } from './db/database.js';

export interface StoredResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** JSON value; null for an empty body and when `content` carries it. */
  readonly body: unknown;
  readonly content?: ReplyContent;
  readonly cookies?: readonly string[];
}

const HEADER_NAME = /^[a-z0-9-]{1,64}$/;
const MAX_HEADERS = 32;
const MAX_HEADER_VALUE = 8192;
/** `type/subtype` with optional parameters, printable ASCII (the Reply's own bound is 256). */
const MEDIA_TYPE =
  /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(\s*;[\x20-\x7e]*)?$/;
const MAX_MEDIA_TYPE = 256;
const COOKIE = /^[\x20-\x7e]+$/;

/** Checks what a handler returned; throws (a handler failure) when it is not a response. */
export function toStoredResponse(value: unknown): StoredResponse {
  if (typeof value !== 'object' || value === null) throw new Error('handler returned no response object');
  const { status, headers = {}, body = null, content, cookies } = value as Record<string, unknown>;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    throw new Error(`handler returned status ${String(status)}; expected an integer from 100 to 599`);
  }
  const checked = { status, headers: checkHeaders(headers), body: roundTrip(body) };
  const out: StoredResponse = {
    ...checked,
    ...(content === undefined || content === null ? {} : { content: checkContent(content) }),
    ...(cookies === undefined || cookies === null ? {} : { cookies: checkCookies(cookies) }),
  };
  if (out.content !== undefined && out.body !== null) {
    throw new Error('handler returned both a body and content; a response has one or the other');
  }
  return out;
}

/** An error of nonstop's as an answer to store (an upstream's failures are answers). */
export function errorAnswer(err: NonstopError): StoredResponse {
  return toStoredResponse({
    status: err.status ?? 502,
    body: { error: { code: err.code, message: err.message } },
  });
}

/** Reads a stored response back from its `nonstop_requests` row. */
export function storedResponseFromRow(row: Row): StoredResponse {
  const bytes = row.content;
  const content =
    typeof row.content_type === 'string' && bytes instanceof Uint8Array
      ? { type: row.content_type, data: bytes }
      : undefined;
  return toStoredResponse({
    status: row.status,
    headers: row.headers ?? {},
    body: row.body ?? null,
    content,
    cookies: row.cookies ?? undefined,
  });
}

/** The parameters that store `response` in its row (see Executor: status, headers, … cookies). */
export function responseColumns(response: StoredResponse): unknown[] {
  return [
    response.status,
    JSON.stringify(response.headers),
    JSON.stringify(response.body),
    response.content?.type ?? null,
    response.content === undefined ? null : Buffer.from(response.content.base64, 'base64'),
    response.cookies === undefined ? null : JSON.stringify(response.cookies),
  ];
}

/** SET clause for `responseColumns`, whose values are $2…$7 ($1 is the request id). */
export const RESPONSE_SET =
  'status = $2, headers = $3::json, body = $4::json, content_type = $5, content = $6, cookies = $7::jsonb';

function checkHeaders(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('handler returned headers that are not an object');
  }
  const out: Record<string, string> = {};
  const entries = Object.entries(value);
  if (entries.length > MAX_HEADERS) throw new Error(`handler returned more than ${MAX_HEADERS} headers`);
  for (const [name, v] of entries) {
    const lower = name.toLowerCase();
    if (
      !HEADER_NAME.test(lower) ||
      typeof v !== 'string' ||
      /[\r\n]/.test(v) ||
      v.length > MAX_HEADER_VALUE
    ) {
      throw new Error(`handler returned an invalid header ${JSON.stringify(name)}`);
    }
    if (lower === 'set-cookie') throw new Error('handler returned a set-cookie header; return "cookies"');
    out[lower] = v;
  }
  return out;
}

function checkContent(value: unknown): ReplyContent {
  const { type, data, base64 } = (typeof value === 'object' ? value : {}) as Record<string, unknown>;
  if (typeof type !== 'string' || type.length > MAX_MEDIA_TYPE || !MEDIA_TYPE.test(type)) {
    throw new Error(`handler returned content whose type ${JSON.stringify(type)} is not a media type`);
  }
  // `base64` is the stored form (a row read back, an answer already checked once).
  if (typeof base64 === 'string' && data === undefined) {
    return { type, base64: Buffer.from(base64, 'base64').toString('base64') };
  }
  if (typeof data === 'string') return { type, base64: Buffer.from(data, 'utf8').toString('base64') };
  if (data instanceof Uint8Array) {
    return { type, base64: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') };
  }
  throw new Error('handler returned content whose data is neither a string nor a Uint8Array');
}

function checkCookies(value: unknown): string[] {
  if (!Array.isArray(value)) throw new Error('handler returned cookies that are not an array');
  if (value.length > MAX_REPLY_COOKIES) {
    throw new Error(`handler returned ${value.length} cookies; at most ${MAX_REPLY_COOKIES}`);
  }
  return value.map((c: unknown, i) => {
    if (typeof c !== 'string' || !COOKIE.test(c) || Buffer.byteLength(c) > MAX_COOKIE_BYTES) {
      throw new Error(
        `handler returned an invalid cookie [${i}]: 1 to ${MAX_COOKIE_BYTES} printable ASCII characters, no CR or LF`,
      );
    }
    return c;
  });
}

function roundTrip(body: unknown): unknown {
  const text = JSON.stringify(body);
  if (text === undefined) throw new Error('handler returned a body that is not JSON');
  return JSON.parse(text) as unknown;
}
