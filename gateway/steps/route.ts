// Finds the request's route. HEAD runs its path's GET route (the answer goes without a body);
// OPTIONS is answered here, with the path's methods and, for a CORS preflight, the route's
// policy; an answer to a cross-origin request gets its CORS headers.
import type { HttpMethod, RoutesConfig } from '../../config/schemas/routes.js';
import { errors } from '../../lib/errors.js';
import { corsHeaders, corsPolicyOf, preflight } from '../cors.js';
import type { Router } from '../router.js';
import { ANSWERED, refusal, type Exchange, type Refusal, type Routed } from './exchange.js';

/** The Allow header of a path that has `methods`. */
function allowOf(methods: readonly HttpMethod[]): string {
  return [...methods, ...(methods.includes('GET') ? ['HEAD'] : []), 'OPTIONS'].join(', ');
}

export function route(router: Router, table: Pick<RoutesConfig, 'cors'>) {
  return (x: Exchange): Refusal | typeof ANSWERED | Routed => {
    const { req, path } = x;
    const method = req.method ?? '';
    if (method === 'OPTIONS') return options(x, router, table);
    const head = method === 'HEAD';
    const match = router.match(head ? 'GET' : method, path);
    if (match.kind === 'not-found') return refusal(errors.NOT_FOUND());
    if (match.kind === 'bad-path') return refusal(errors.BAD_REQUEST('Malformed percent-encoding in path'));
    if (match.kind === 'method-not-allowed') {
      return refusal(errors.METHOD_NOT_ALLOWED(), { allow: allowOf(match.allow) });
    }
    const origin = req.headers.origin;
    Object.assign(x.answerHeaders, corsHeaders(corsPolicyOf(match.route, table), origin));
    return { ...x, route: match.route, params: match.params, head, query: {}, body: null };
  };
}

function options(x: Exchange, router: Router, table: Pick<RoutesConfig, 'cors'>): Refusal | typeof ANSWERED {
  const { req, res, path } = x;
  const match = router.match('OPTIONS', path);
  if (match.kind === 'not-found') return refusal(errors.NOT_FOUND());
  if (match.kind === 'bad-path') return refusal(errors.BAD_REQUEST('Malformed percent-encoding in path'));
  // No route is OPTIONS, so a path that exists answers "method not allowed" with its methods.
  const methods = match.kind === 'method-not-allowed' ? match.allow : [];
  const origin = req.headers.origin;
  const asked = req.headers['access-control-request-method'];
  if (origin === undefined || asked === undefined) {
    res.writeHead(204, { allow: allowOf(methods), 'content-length': 0 }).end();
    return ANSWERED;
  }
  const target = router.match(asked === 'HEAD' ? 'GET' : asked, path);
  const policy = target.kind === 'found' ? corsPolicyOf(target.route, table) : undefined;
  const verdict = preflight(policy, origin, req.headers, methods);
  if (!verdict.ok)
    return refusal(errors.CORS_REFUSED(`CORS preflight refused: ${verdict.reason}`), { vary: 'Origin' });
  res.writeHead(204, { ...verdict.headers, allow: allowOf(methods), 'content-length': 0 }).end();
  return ANSWERED;
}
