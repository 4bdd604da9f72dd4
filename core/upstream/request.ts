// The HTTP request an upstream application gets for an envelope: its method, path and query,
// its forwarded headers, its body re-encoded as the client sent it (`bodyType`), and the
// request id as X-Request-Id and Idempotency-Key so the application can dedupe on it.
import { randomBytes } from 'node:crypto';
import type { Envelope, UploadedFile } from '../../lib/envelope.js';

export interface UpstreamRequest {
  readonly method: string;
  /** Path and query, to append to the upstream's base URL. */
  readonly target: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer | undefined;
}

/**
 * Forwarded headers the core sets itself, or that describe a connection or an encoding of the
 * client's rather than the request (accept-encoding: the core stores the body as it comes).
 */
const NOT_FORWARDED = new Set([
  'host',
  'content-length',
  'content-type',
  'accept-encoding',
  'x-request-id',
  'idempotency-key',
  'x-forwarded-for',
  'x-nonstop-gateway',
]);
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'trailers',
]);

export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-');
}

export function upstreamRequest(envelope: Envelope): UpstreamRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(envelope.headers)) {
    if (!NOT_FORWARDED.has(name) && !isHopByHop(name)) headers[name] = value;
  }
  headers['x-request-id'] = envelope.id;
  headers['idempotency-key'] = envelope.id;
  headers['x-forwarded-for'] = envelope.clientIp;
  headers['x-nonstop-gateway'] = envelope.gatewayId;
  const encoded = encodeBody(envelope);
  if (encoded !== undefined) {
    headers['content-type'] = encoded.type;
    headers['content-length'] = String(encoded.bytes.length);
  }
  const query = searchParams(envelope.query).toString();
  return {
    method: envelope.method,
    target: query === '' ? envelope.path : `${envelope.path}?${query}`,
    headers,
    body: encoded?.bytes,
  };
}

function encodeBody(envelope: Envelope): { type: string; bytes: Buffer } | undefined {
  const body = envelope.body;
  if (body === null || body === undefined) return undefined;
  switch (envelope.bodyType ?? 'json') {
    case 'json':
      return { type: 'application/json', bytes: Buffer.from(JSON.stringify(body), 'utf8') };
    case 'text':
      return { type: 'text/plain; charset=utf-8', bytes: Buffer.from(scalar(body), 'utf8') };
    case 'form':
      return {
        type: 'application/x-www-form-urlencoded',
        bytes: Buffer.from(searchParams(asFields(body)).toString(), 'utf8'),
      };
    case 'multipart':
      return multipart(asFields(body));
  }
}

function searchParams(fields: Readonly<Record<string, unknown>>): URLSearchParams {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) params.append(name, scalar(item));
  }
  return params;
}

function multipart(fields: Readonly<Record<string, unknown>>): { type: string; bytes: Buffer } {
  const boundary = `nonstop-${randomBytes(16).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      let head = `--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"`;
      let data: Buffer;
      if (isUploadedFile(item)) {
        head += `; filename="${quote(item.filename)}"\r\nContent-Type: ${item.type.replace(/[\r\n]/g, '')}`;
        data = Buffer.from(item.base64, 'base64');
      } else data = Buffer.from(scalar(item), 'utf8');
      parts.push(Buffer.from(`${head}\r\n\r\n`, 'utf8'), data, Buffer.from('\r\n'));
    }
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { type: `multipart/form-data; boundary=${boundary}`, bytes: Buffer.concat(parts) };
}

/** A name in a Content-Disposition parameter: quotes and line breaks percent-encoded (as browsers do). */
function quote(text: string): string {
  return text.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function isUploadedFile(value: unknown): value is UploadedFile {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.filename === 'string' && typeof v.type === 'string' && typeof v.base64 === 'string';
}

/** A field's value as text: strings as they are, numbers and booleans (schema coercion) printed, the rest JSON. */
function scalar(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value) ?? '';
}

function asFields(body: unknown): Readonly<Record<string, unknown>> {
  return typeof body === 'object' && body !== null && !Array.isArray(body)
    ? (body as Record<string, unknown>)
    : { value: body };
}
