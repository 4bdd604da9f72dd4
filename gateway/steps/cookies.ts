// Cookies are identity: the application gets the route's listed cookies and nothing else, and a
// request that carries another is refused before anything is queued.
import { errors } from '../../lib/errors.js';
import { parseCookieHeader } from '../../lib/cookies.js';
import { refusal, type Routed, type StepResult } from './exchange.js';

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
