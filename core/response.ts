// A handler's answer in the form the core stores and returns: status 100–599, lowercase header
// names (as the broker's Reply requires), and a body that survived a JSON round trip, so an
// executed answer and its later replays are the same value.
import type { Row } from './db/database.js';

export interface StoredResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** JSON value; null for an empty body. */
  readonly body: unknown;
}

const HEADER_NAME = /^[a-z0-9-]{1,64}$/;
const MAX_HEADERS = 32;

/** Checks what a handler returned; throws (a handler failure) when it is not a response. */
export function toStoredResponse(value: unknown): StoredResponse {
  if (typeof value !== 'object' || value === null) throw new Error('handler returned no response object');
  const { status, headers = {}, body = null } = value as Record<string, unknown>;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    throw new Error(`handler returned status ${String(status)}; expected an integer from 100 to 599`);
  }
  return { status, headers: checkHeaders(headers), body: roundTrip(body) };
}

/** Reads a stored response back from its `nonstop_requests` row. */
export function storedResponseFromRow(row: Row): StoredResponse {
  return toStoredResponse({ status: row.status, headers: row.headers ?? {}, body: row.body ?? null });
}

function checkHeaders(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('handler returned headers that are not an object');
  }
  const out: Record<string, string> = {};
  const entries = Object.entries(value);
  if (entries.length > MAX_HEADERS) throw new Error(`handler returned more than ${MAX_HEADERS} headers`);
  for (const [name, v] of entries) {
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(lower) || typeof v !== 'string' || /[\r\n]/.test(v)) {
      throw new Error(`handler returned an invalid header ${JSON.stringify(name)}`);
    }
    out[lower] = v;
  }
  return out;
}

function roundTrip(body: unknown): unknown {
  const text = JSON.stringify(body);
  if (text === undefined) throw new Error('handler returned a body that is not JSON');
  return JSON.parse(text) as unknown;
}
