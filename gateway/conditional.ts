// Conditional requests (RFC 9110, 13): entity-tag lists and their comparisons, and whether a
// GET is answered 304 or a Range applies. One set of rules for the static files the gateway
// serves and the applications' replies it passes on.

/** The entity tags of an If-None-Match / If-Match list, or '*'; parsing stops at a malformed member. */
export function parseEtagList(header: string): '*' | string[] {
  if (header.trim() === '*') return '*';
  const tags: string[] = [];
  const re = /\s*(W\/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  let last = 0;
  while (last < header.length && (m = re.exec(header)) !== null) {
    tags.push(`${m[1] ?? ''}${m[2]!}`);
    last = re.lastIndex;
  }
  return tags;
}

/** Weak comparison (RFC 9110 8.8.3.2): the opaque tags are equal, W/ or not. */
export function weakMatch(a: string, b: string): boolean {
  return opaque(a) === opaque(b);
}

/** Strong comparison: both strong and equal. */
export function strongMatch(a: string, b: string): boolean {
  return !a.startsWith('W/') && !b.startsWith('W/') && a === b;
}

function opaque(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}

export interface Validators {
  readonly etag?: string | undefined;
  /** Modification time in ms; compared at one-second precision, as HTTP dates carry. */
  readonly mtimeMs?: number | undefined;
}

/**
 * True when a GET/HEAD should be answered 304 (RFC 9110 13.2.2): If-None-Match decides when
 * present (weak comparison, `*` matches any current file); only without it If-Modified-Since does.
 */
export function notModified(
  ifNoneMatch: string | undefined,
  ifModifiedSince: string | undefined,
  current: Validators,
): boolean {
  if (ifNoneMatch !== undefined) {
    const tags = parseEtagList(ifNoneMatch);
    const etag = current.etag;
    return etag !== undefined && (tags === '*' || tags.some((t) => weakMatch(t, etag)));
  }
  if (ifModifiedSince !== undefined && current.mtimeMs !== undefined) {
    const since = Date.parse(ifModifiedSince);
    if (Number.isNaN(since)) return false;
    return Math.floor(current.mtimeMs / 1000) <= Math.floor(since / 1000);
  }
  return false;
}

/** If-Range (RFC 9110 13.1.5): the range applies only when the validator still matches. */
export function ifRangeMatches(ifRange: string | undefined, current: Validators): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/'))
    return current.etag !== undefined && strongMatch(value, current.etag);
  const date = Date.parse(value);
  if (Number.isNaN(date) || current.mtimeMs === undefined) return false;
  return Math.floor(date / 1000) === Math.floor(current.mtimeMs / 1000);
}
