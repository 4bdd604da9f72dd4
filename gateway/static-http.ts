// The pure HTTP rules of static files (RFC 9110): content types, hashed names, ETags and
// byte ranges. No I/O, so each is unit-tested (conditionals: conditional.ts).

const TEXT = '; charset=utf-8';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  html: `text/html${TEXT}`,
  htm: `text/html${TEXT}`,
  css: `text/css${TEXT}`,
  js: `text/javascript${TEXT}`,
  mjs: `text/javascript${TEXT}`,
  json: `application/json${TEXT}`,
  map: `application/json${TEXT}`,
  svg: `image/svg+xml${TEXT}`,
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  ico: 'image/x-icon',
  woff: 'font/woff',
  woff2: 'font/woff2',
  ttf: 'font/ttf',
  otf: 'font/otf',
  txt: `text/plain${TEXT}`,
  xml: `application/xml${TEXT}`,
  pdf: 'application/pdf',
  wasm: 'application/wasm',
  webmanifest: `application/manifest+json${TEXT}`,
};

/** By the file name's last extension, case-insensitively; unknown: application/octet-stream. */
export function contentTypeOf(name: string): string {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return 'application/octet-stream';
  return CONTENT_TYPES[name.slice(dot + 1).toLowerCase()] ?? 'application/octet-stream';
}

const HEX = /^[0-9a-f]{8,64}$/i;
const BASE64URL = /^[A-Za-z0-9_]{8,64}$/;

/**
 * True when a segment of the name before its extension (segments split at "." and "-") looks like
 * a content hash: 8-64 hex digits with at least one digit, or 8-64 base64url characters with a
 * digit or with both upper- and lower-case letters. A plain word ("datepicker") never counts.
 */
export function isHashedName(name: string): boolean {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return false;
  for (const segment of name.slice(0, dot).split(/[.-]/)) {
    const hasDigit = /[0-9]/.test(segment);
    if (HEX.test(segment) && hasDigit) return true;
    if (BASE64URL.test(segment) && (hasDigit || (/[a-z]/.test(segment) && /[A-Z]/.test(segment))))
      return true;
  }
  return false;
}

/** A strong validator from size and modification time (changes whenever either does). */
export function etagOf(size: number, mtimeMs: number, suffix = ''): string {
  return `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}${suffix}"`;
}

export type RangeRequest =
  /** No usable Range header (absent, another unit, or malformed): the whole file, 200. */
  | { readonly kind: 'none' }
  /** More than one range: answered with the whole file, 200 (RFC 9110 14.2 allows it). */
  | { readonly kind: 'multiple' }
  | { readonly kind: 'unsatisfiable' }
  /** Inclusive byte positions. */
  | { readonly kind: 'range'; readonly start: number; readonly end: number };

const RANGE_SPEC = /^(?:(\d{1,15})-(\d{0,15})|-(\d{1,15}))$/;

/** A `Range: bytes=…` header against a file of `size` bytes. */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'none' };
  const eq = header.indexOf('=');
  if (eq === -1 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return { kind: 'none' };
  const specs = header
    .slice(eq + 1)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (specs.length === 0) return { kind: 'none' };
  const parsed = specs.map((s) => RANGE_SPEC.exec(s));
  if (parsed.some((m) => m === null)) return { kind: 'none' };
  if (parsed.length > 1) return { kind: 'multiple' };
  const m = parsed[0]!;
  if (m[3] !== undefined) {
    const suffix = Number(m[3]);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const last = m[2] === '' ? undefined : Number(m[2]);
  // "5-2" is invalid, so the header is ignored (RFC 9110 14.1.1).
  if (last !== undefined && last < start) return { kind: 'none' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end: Math.min(last ?? size - 1, size - 1) };
}
