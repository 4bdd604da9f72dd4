// Writing answers to clients: the gateway's JSON errors, the application's replies (JSON or any
// content, cookies, the headers it may set, 304 for what the client has, compressed where its
// route allows: gateway/compression.ts), and the headers every response carries.
import type { IncomingHttpHeaders } from 'node:http';
import { constants } from 'node:http2';
import type { NonstopError } from '../lib/errors.js';
import type { Reply } from '../lib/envelope.js';
import type { CompressionConfig } from '../config/schemas/gateway.js';
import { compress, compressionFor, variantEtag } from './compression.js';
import { notModified } from './conditional.js';
import { forProtocol, isHttp2, type GatewayResponse } from './http-message.js';

export const REPLAYED_HEADER = 'x-nonstop-replayed';

const BASE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const;

/**
 * Headers an application reply may set; anything else a broker sends is dropped. Hop-by-hop
 * headers, framing (content-length, transfer-encoding), CORS, HSTS and nosniff stay the
 * gateway's: it sets them itself.
 */
const REPLY_HEADERS = new Set([
  'location',
  'retry-after',
  'etag',
  'last-modified',
  'expires',
  'content-language',
  'content-location',
  'content-disposition',
  'cache-control',
  'vary',
  'link',
  'www-authenticate',
  'content-security-policy',
  'content-security-policy-report-only',
  'referrer-policy',
  'permissions-policy',
  'cross-origin-opener-policy',
  'cross-origin-embedder-policy',
  'cross-origin-resource-policy',
  'x-frame-options',
]);

/** Validators and metadata a 304 repeats from the answer it stands for (RFC 9110, 15.4.5). */
const NOT_MODIFIED_KEEPS = ['etag', 'last-modified', 'cache-control', 'expires', 'vary', 'content-location'];

export function sendJson(
  res: GatewayResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const payload =
    body === null || body === undefined || status === 204 || status === 304 ? '' : JSON.stringify(body);
  if (headers.connection === 'close') closeAfterAnswer(res);
  res.writeHead(status, {
    ...BASE_HEADERS,
    ...forProtocol(res, headers),
    ...(payload === '' ? {} : { 'content-type': 'application/json; charset=utf-8' }),
    'content-length': Buffer.byteLength(payload),
  });
  res.end(payload);
}

/**
 * Ends the connection's use once this answer is sent, when the rest of the request is not
 * going to be read (a refused body, faulty framing). HTTP/1.1 closes the connection; HTTP/2
 * has no `connection` header (RFC 9113, 8.2.2) and needs no closing of the whole session,
 * whose other streams are fine: the stream alone is reset with NO_ERROR after the complete
 * answer, which tells the client to stop sending its body (RFC 9113, 8.1).
 */
export function closeAfterAnswer(res: GatewayResponse): void {
  if (!isHttp2(res)) {
    if (!res.headersSent) res.setHeader('connection', 'close');
    return;
  }
  const stream = res.stream;
  res.once('finish', () => {
    if (!stream.closed) stream.close(constants.NGHTTP2_NO_ERROR);
  });
}

export function sendError(
  res: GatewayResponse,
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

export interface ReplyRequest {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  /** Headers this answer carries whatever it is (CORS). */
  readonly extra?: Readonly<Record<string, string>>;
  /** Given when the route's policy lets this reply be compressed (gateway/compression.ts). */
  readonly compression?: CompressionConfig | undefined;
}

/** Joins two Vary values without repeating a name. */
function joinVary(a: string | undefined, b: string | undefined): string | undefined {
  const names = [...(a ?? '').split(','), ...(b ?? '').split(',')]
    .map((n) => n.trim())
    .filter((n) => n !== '');
  const seen = new Set<string>();
  const out = names.filter((n) => !seen.has(n.toLowerCase()) && seen.add(n.toLowerCase()));
  return out.length === 0 ? undefined : out.join(', ');
}

/** An application's Last-Modified as ms, or undefined (absent or not an HTTP date). */
function lastModifiedMs(value: string | undefined): number | undefined {
  const ms = value === undefined ? NaN : Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

export async function sendReply(res: GatewayResponse, reply: Reply, request?: ReplyRequest): Promise<void> {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string | string[]> = { ...BASE_HEADERS, 'x-request-id': reply.id };
  // Tells a retrying client that this is the stored answer of an earlier execution.
  if (reply.replayed === true) headers[REPLAYED_HEADER] = '1';
  for (const [name, value] of Object.entries(reply.headers)) {
    if (REPLY_HEADERS.has(name) && !/[\r\n]/.test(value)) headers[name] = value;
  }
  for (const [name, value] of Object.entries(request?.extra ?? {})) {
    headers[name] = name === 'vary' ? (joinVary(headers.vary as string | undefined, value) ?? value) : value;
  }
  if (reply.cookies !== undefined && reply.cookies.length > 0) headers['set-cookie'] = [...reply.cookies];
  const { payload, contentType } = payloadOf(reply);
  const { vary, coding } =
    request?.compression === undefined
      ? { vary: false, coding: undefined }
      : compressionFor(
          request.compression,
          {
            status: reply.status,
            contentType,
            size: payload.length,
            cacheControl: reply.headers['cache-control'],
          },
          single(request.headers['accept-encoding']),
        );
  if (vary) headers.vary = joinVary(headers.vary as string | undefined, 'Accept-Encoding')!;
  if (coding !== undefined && typeof headers.etag === 'string') {
    // The compressed bytes are another representation: the identity's tag must not validate them.
    const tag = variantEtag(headers.etag, coding);
    if (tag === undefined) delete headers.etag;
    else headers.etag = tag;
  }
  const get = request?.method === 'GET' || request?.method === 'HEAD';
  if (
    get &&
    reply.status === 200 &&
    notModified(request.headers['if-none-match'], request.headers['if-modified-since'], {
      etag: headers.etag as string | undefined,
      mtimeMs: lastModifiedMs(reply.headers['last-modified']),
    })
  ) {
    const kept: Record<string, string | string[]> = { 'x-request-id': reply.id };
    for (const name of [...NOT_MODIFIED_KEEPS, ...Object.keys(request?.extra ?? {})]) {
      const value = headers[name];
      if (value !== undefined) kept[name] = value;
    }
    res.writeHead(304, kept).end();
    return;
  }
  if (contentType !== undefined) headers['content-type'] = contentType;
  if (coding !== undefined && request?.compression !== undefined) {
    headers['content-encoding'] = coding;
    // HEAD: the headers of the compressed answer, without compressing a body nobody gets (and so
    // without its Content-Length, which a HEAD answer may leave out, RFC 9110 8.6).
    if (request.method === 'HEAD') {
      res.writeHead(reply.status, headers).end();
      return;
    }
    const compressed = await compress(payload, coding, request.compression.dynamic);
    if (res.headersSent || res.destroyed) return;
    headers['content-length'] = String(compressed.length);
    res.writeHead(reply.status, headers).end(compressed);
    return;
  }
  headers['content-length'] = String(payload.length);
  res.writeHead(reply.status, headers).end(payload);
}

/** The bytes a reply's body is, and their type (none for an empty body). */
function payloadOf(reply: Reply): { payload: Buffer; contentType: string | undefined } {
  if (reply.content !== undefined)
    return { payload: Buffer.from(reply.content.base64, 'base64'), contentType: reply.content.type };
  const empty =
    reply.body === null || reply.body === undefined || reply.status === 204 || reply.status === 304;
  return empty
    ? { payload: Buffer.alloc(0), contentType: undefined }
    : { payload: Buffer.from(JSON.stringify(reply.body)), contentType: 'application/json; charset=utf-8' };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}
