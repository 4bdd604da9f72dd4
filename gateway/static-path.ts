// The part of a request path under a static mount, decoded and checked before it touches the
// file system: nothing that could climb out of the mount's folder, name a dotfile or smuggle a
// separator gets through.

export type StaticPath =
  /** Decoded segments below the mount; `directory` when the path ends in "/". */
  | { readonly kind: 'ok'; readonly segments: readonly string[]; readonly directory: boolean }
  /** A traversal attempt or a malformed path: 400. */
  | { readonly kind: 'bad'; readonly reason: string }
  /** A segment starting with ".": answered as if it did not exist (404). */
  | { readonly kind: 'hidden' };

const MAX_SEGMENT_BYTES = 255;

/** `rest` is the raw (percent-encoded) path after the mount's prefix, without the query. */
export function checkStaticPath(rest: string): StaticPath {
  if (rest.includes('\\')) return bad('backslash in path');
  if (rest.includes('\0')) return bad('NUL in path');
  const raw = rest.split('/');
  const directory = raw[raw.length - 1] === '';
  if (directory) raw.pop();
  const segments: string[] = [];
  let hidden = false;
  for (const part of raw) {
    // An encoded separator or NUL would change what the segment means once decoded.
    if (/%(?:2f|5c|00)/i.test(part)) return bad('encoded "/", "\\" or NUL in path');
    let segment: string;
    try {
      segment = decodeURIComponent(part);
    } catch {
      return bad('malformed percent-encoding in path');
    }
    if (segment === '') return bad('empty segment in path');
    if (segment === '.' || segment === '..') return bad('"." or ".." segment in path');
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) return bad('path segment too long');
    if (segment.startsWith('.')) hidden = true;
    segments.push(segment);
  }
  // Traversal is checked on every segment first: "/.git/../x" is a bad path, not a hidden one.
  if (hidden) return { kind: 'hidden' };
  return { kind: 'ok', segments, directory };
}

function bad(reason: string): StaticPath {
  return { kind: 'bad', reason };
}
