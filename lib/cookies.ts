// The Cookie request header, read the same way by the gateway (which lets through only a
// route's cookies) and the broker (which refuses an envelope carrying any other).

/** `a=1; b=2` as [name, value] pairs; null when a pair has no name. */
export function parseCookieHeader(header: string): [string, string][] | null {
  const pairs: [string, string][] = [];
  for (const part of header.split(';')) {
    const text = part.trim();
    if (text === '') continue;
    const eq = text.indexOf('=');
    if (eq <= 0) return null;
    pairs.push([text.slice(0, eq).trim(), text.slice(eq + 1).trim()]);
  }
  return pairs;
}
