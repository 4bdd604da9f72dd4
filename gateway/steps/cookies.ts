// Cookies are identity: the application gets the route's listed cookies and nothing else. Any
// other cookie the browser sends (a site-wide `Path=/` one, an analytics tracker) is dropped here,
// not forwarded and not refused, so that one site's cookies do not break another route's calls.
import { errors } from '../../lib/errors.js';
import { parseCookieHeader } from '../../lib/cookies.js';
import { refusal, type Routed, type StepResult } from './exchange.js';

export function cookies(x: Routed): StepResult {
  const header = x.req.headers.cookie;
  if (header === undefined) return undefined;
  const pairs = parseCookieHeader(header);
  if (pairs === null) return refusal(errors.BAD_REQUEST('Malformed Cookie header'));
  const allowed = new Set(x.route.cookies);
  const kept = pairs.filter(([name]) => allowed.has(name));
  if (kept.length > 0) x.cookie = kept.map(([n, v]) => `${n}=${v}`).join('; ');
  return undefined;
}
