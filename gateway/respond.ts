// Writing answers to clients: JSON bodies and the headers every response carries.
import type { ServerResponse } from 'node:http';
import type { NonstopError } from '../lib/errors.js';
import type { Reply } from '../lib/envelope.js';

export const REPLAYED_HEADER = 'x-nonstop-replayed';

const BASE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const;

/** Headers an application reply may set; anything else a broker sends is dropped. */
const REPLY_HEADERS = new Set(['location', 'retry-after', 'etag', 'last-modified', 'content-language']);

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const payload =
    body === null || body === undefined || status === 204 || status === 304 ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...BASE_HEADERS,
    ...headers,
    ...(payload === '' ? {} : { 'content-type': 'application/json; charset=utf-8' }),
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

export function sendError(
  res: ServerResponse,
  err: NonstopError,
  requestId?: string,
  headers: Record<string, string> = {},
): void {
  const status = err.status ?? 500;
  const body = {
    error: { code: err.code, message: err.message, ...(requestId === undefined ? {} : { requestId }) },
  };
  sendJson(res, status, body, {
    ...headers,
    ...(requestId === undefined ? {} : { 'x-request-id': requestId }),
  });
}

export function sendReply(res: ServerResponse, reply: Reply): void {
  const headers: Record<string, string> = { 'x-request-id': reply.id };
  // Tells a retrying client that this is the stored answer of an earlier execution.
  if (reply.replayed === true) headers[REPLAYED_HEADER] = '1';
  for (const [name, value] of Object.entries(reply.headers)) {
    if (REPLY_HEADERS.has(name)) headers[name] = value;
  }
  sendJson(res, reply.status, reply.body, headers);
}
