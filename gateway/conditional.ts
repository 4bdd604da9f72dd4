// Conditional GETs (RFC 9110, 13): an answer whose ETag the client holds, or that has not
// changed since the date it holds, goes as 304 without a body.
import type { IncomingHttpHeaders } from 'node:http';

/** Whether `etag` is among an If-None-Match list (weak comparison, `*` matches any). */
export function etagMatches(ifNoneMatch: string, etag: string): boolean {
  const opaque = (t: string) => t.trim().replace(/^W\//, '');
  const mine = opaque(etag);
  return ifNoneMatch.split(',').some((t) => t.trim() === '*' || opaque(t) === mine);
}

/** Whether a GET answer with these validators is one the client already has. */
export function notModified(
  request: IncomingHttpHeaders,
  validators: { readonly etag?: string | undefined; readonly lastModified?: string | undefined },
): boolean {
  const inm = request['if-none-match'];
  if (inm !== undefined) return validators.etag !== undefined && etagMatches(inm, validators.etag);
  const ims = request['if-modified-since'];
  if (ims === undefined || validators.lastModified === undefined) return false;
  const since = Date.parse(ims);
  const modified = Date.parse(validators.lastModified);
  return Number.isFinite(since) && Number.isFinite(modified) && modified <= since;
}
