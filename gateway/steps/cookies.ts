// Cookies are identity: the application gets the route's listed cookies and nothing else, and a
// request that carries another is refused before anything is queued.
import { errors } from '../../lib/errors.js';
import { refusal, type Routed, type StepResult } from './exchange.js';

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

export function cookies(x: Routed): StepResult {
  const header = x.req.headers.cookie;
  if (header === undefined) return undefined;
  const pairs = parseCookieHeader(header);
  if (pairs === null) return refusal(errors.BAD_REQUEST('Malformed Cookie header'));
  const allowed = new Set(x.route.cookies);
  const other = pairs.find(([name]) => !allowed.has(name));
  if (other !== undefined) {
    const takes =
      x.route.cookies.length === 0 ? 'takes no cookies' : `takes only ${x.route.cookies.join(', ')}`;
    return refusal(
      errors.COOKIE_NOT_ALLOWED(
        `${x.route.method} ${x.route.path} ${takes}, not "${other[0].slice(0, 64)}" (scope the cookie with its Path or list it on the route)`,
      ),
    );
  }
  if (pairs.length > 0) x.cookie = pairs.map(([n, v]) => `${n}=${v}`).join('; ');
  return undefined;
}
