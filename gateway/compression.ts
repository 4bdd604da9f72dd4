// Response compression: which coding a client gets (Accept-Encoding, RFC 9110 12.5.3), which
// answers may be compressed at all (text types, big enough, no no-transform; for application
// replies the route table's BREACH policy), the ETag of a compressed representation, and the
// compression itself (node:zlib, on the thread pool).
import { promisify } from 'node:util';
import {
  brotliCompress,
  constants,
  createBrotliCompress,
  createGzip,
  gzip,
  type BrotliOptions,
  type ZlibOptions,
} from 'node:zlib';
import type { Transform } from 'node:stream';
import type { CodingLevels, CompressionConfig } from '../config/schemas/gateway.js';
import type { RouteDefinition, RoutesConfig } from '../config/schemas/routes.js';

export type Coding = 'br' | 'gzip';
export const CODINGS: readonly Coding[] = ['br', 'gzip'];

export type AcceptedCodings = Record<Coding | 'identity', number>;

const Q_VALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/**
 * The quality the client gives each coding we may send and identity: a listed coding has its
 * own q, an unlisted one that of `*`, else 0; identity is acceptable (1) unless `identity;q=0`
 * or `*;q=0` without an entry of its own says otherwise. `x-gzip` counts as gzip.
 */
export function acceptedCodings(header: string | undefined): AcceptedCodings {
  const listed = listedCodings(header);
  const star = listed.get('*');
  return {
    br: listed.get('br') ?? star ?? 0,
    gzip: listed.get('gzip') ?? star ?? 0,
    identity: listed.get('identity') ?? star ?? 1,
  };
}

/** Each coding the header names, with its q (the highest when named twice). */
function listedCodings(header: string | undefined): Map<string, number> {
  const listed = new Map<string, number>();
  if (header === undefined) return listed;
  for (const part of header.split(',')) {
    const [rawName, ...params] = part.split(';');
    const name = rawName!.trim().toLowerCase();
    if (name === '') continue;
    let q = 1;
    for (const p of params) {
      const [k, v] = p.split('=').map((s) => s.trim());
      // A malformed q counts as 0: never send a coding the client may not decode.
      if (k?.toLowerCase() === 'q') q = Q_VALUE.test(v ?? '') ? Number(v) : 0;
    }
    const key = name === 'x-gzip' ? 'gzip' : name;
    listed.set(key, Math.max(q, listed.get(key) ?? 0));
  }
  return listed;
}

/**
 * Of the codings available, the one the client prefers (br on a tie), or undefined for identity:
 * when it accepts none of them, or names identity with a higher q (`gzip;q=0.5, identity`; an
 * unnamed identity ranks below any accepted coding). When it refuses identity as well, identity
 * it gets all the same (RFC 9110 12.5.3 lets a server answer so).
 */
export function chooseCoding(header: string | undefined, available: readonly Coding[]): Coding | undefined {
  const q = acceptedCodings(header);
  const identity = listedCodings(header).get('identity') ?? 0;
  let best: Coding | undefined;
  for (const coding of CODINGS) {
    if (!available.includes(coding) || q[coding] <= 0) continue;
    if (best === undefined || q[coding] > q[best]) best = coding;
  }
  if (best === undefined || identity > q[best]) return undefined;
  return best;
}

/** Media types that come out smaller compressed; images, audio, video, archives and woff/woff2 do not. */
const COMPRESSIBLE_TYPES = new Set([
  'application/json',
  'application/javascript',
  'application/x-javascript',
  'application/ecmascript',
  'application/xml',
  'application/wasm',
  'application/x-ndjson',
  'application/yaml',
  'application/toml',
  'application/graphql',
  'application/vnd.ms-fontobject',
  'image/svg+xml',
  'image/x-icon',
  'image/vnd.microsoft.icon',
  'image/bmp',
  'font/ttf',
  'font/otf',
]);

/** By the media type (parameters ignored): text/*, +json, +xml and the list above; else never. */
export function isCompressibleType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const essence = contentType.split(';')[0]!.trim().toLowerCase();
  if (essence.startsWith('text/')) return true;
  if (COMPRESSIBLE_TYPES.has(essence)) return true;
  return /^application\/[a-z0-9.+-]+\+(?:json|xml)$/.test(essence);
}

/** `Cache-Control: no-transform` (RFC 9111 5.2.2.6): the body goes as the application made it. */
export function forbidsTransform(cacheControl: string | undefined): boolean {
  return cacheControl !== undefined && /(?:^|,)\s*no-transform\s*(?:,|$)/i.test(cacheControl);
}

/**
 * May the gateway compress this reply of `route` (BREACH)? The route's `compress`, else the
 * table's; without either, only when the route takes no cookies and the reply sets none: a
 * cookie-bearing answer may hold a secret next to what an attacker had the victim's browser send.
 */
export function mayCompressReply(
  route: Pick<RouteDefinition, 'compress' | 'cookies'>,
  table: Pick<RoutesConfig, 'compress'>,
  setsCookies: boolean,
): boolean {
  const chosen = route.compress ?? table.compress;
  if (chosen !== undefined) return chosen;
  return route.cookies.length === 0 && !setsCookies;
}

/** What a compressible answer is, for `compressionFor`. */
export interface Representation {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly size: number;
  readonly cacheControl?: string | undefined;
}

export interface CompressionChoice {
  /** The answer depends on Accept-Encoding: it carries `Vary: Accept-Encoding`. */
  readonly vary: boolean;
  /** The coding to send, undefined for identity. */
  readonly coding: Coding | undefined;
}

/**
 * Whether an answer is compressible: compression enabled, a status with a body, a compressible
 * type, at least minBytes, no no-transform. Such an answer varies by Accept-Encoding.
 */
export function isCompressible(
  config: Pick<CompressionConfig, 'enabled' | 'minBytes'>,
  answer: Representation,
): boolean {
  if (!config.enabled) return false;
  const { status } = answer;
  if (status < 200 || status === 204 || status === 206 || status === 304) return false;
  if (answer.size === 0 || answer.size < config.minBytes) return false;
  return isCompressibleType(answer.contentType) && !forbidsTransform(answer.cacheControl);
}

/** Whether an answer is compressible and, if so, the coding this client gets. */
export function compressionFor(
  config: Pick<CompressionConfig, 'enabled' | 'minBytes'>,
  answer: Representation,
  acceptEncoding: string | undefined,
): CompressionChoice {
  return isCompressible(config, answer)
    ? { vary: true, coding: chooseCoding(acceptEncoding, CODINGS) }
    : { vary: false, coding: undefined };
}

/**
 * The ETag of a compressed representation: the identity's with the coding appended inside the
 * quotes (`"v1"` → `"v1-br"`, `W/"v1"` → `W/"v1-br"`), so that it never validates the identity
 * bytes; undefined when the identity's is not a well-formed tag.
 */
export function variantEtag(etag: string, coding: Coding): string | undefined {
  const m = /^(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"$/.exec(etag);
  return m === null ? undefined : `${m[1] ?? ''}"${m[2]!}-${coding}"`;
}

const brotliAsync = promisify<Buffer, BrotliOptions, Buffer>(brotliCompress);
const gzipAsync = promisify<Buffer, ZlibOptions, Buffer>(gzip);

function brotliOptions(levels: CodingLevels, size?: number): BrotliOptions {
  return {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: levels.brotliQuality,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
      ...(size === undefined ? {} : { [constants.BROTLI_PARAM_SIZE_HINT]: size }),
    },
  };
}

/** `bytes` in `coding` at `levels`, off the event loop (zlib's thread pool). */
export function compress(bytes: Buffer, coding: Coding, levels: CodingLevels): Promise<Buffer> {
  return coding === 'br'
    ? brotliAsync(bytes, brotliOptions(levels, bytes.length))
    : gzipAsync(bytes, { level: levels.gzipLevel });
}

/** A stream that compresses what goes through it, for a body too big to hold in memory. */
export function compressStream(coding: Coding, levels: CodingLevels, size?: number): Transform {
  return coding === 'br'
    ? createBrotliCompress(brotliOptions(levels, size))
    : createGzip({ level: levels.gzipLevel });
}
