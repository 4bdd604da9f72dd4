// CORS (the Fetch standard's protocol) for the route table's policies: which origin may call a
// route from a page, the preflight the gateway answers itself, and the headers an answer to a
// cross-origin request carries.
import type { IncomingHttpHeaders } from 'node:http';
import {
  CORS_MAX_AGE_SECONDS,
  type CorsPolicy,
  type HttpMethod,
  type RouteDefinition,
  type RoutesConfig,
} from '../config/schemas/routes.js';

/** Request headers a page may always send (the CORS-safelisted ones, lower case). */
const SAFELISTED = new Set(['accept', 'accept-language', 'content-language', 'content-type']);

/** The policy that applies to `route`: its own, or the table's, or none. */
export function corsPolicyOf(
  route: RouteDefinition,
  table: Pick<RoutesConfig, 'cors'>,
): CorsPolicy | undefined {
  if (route.cors === false) return undefined;
  return route.cors ?? table.cors;
}

function allowsOrigin(policy: CorsPolicy, origin: string): boolean {
  return policy.origins.includes('*') || policy.origins.includes(origin);
}

/** What an answer to a request from `origin` carries under `policy` (nothing if not allowed). */
export function corsHeaders(
  policy: CorsPolicy | undefined,
  origin: string | undefined,
): Record<string, string> {
  if (policy === undefined) return {};
  // `*` never goes with credentials (config/routes.ts refuses the pair at start).
  const any = policy.origins.includes('*') && !(policy.credentials ?? false);
  // The answer depends on the Origin whenever the policy names origins: a cache must not hand
  // one origin's answer (with or without the header) to another.
  if (origin === undefined || !allowsOrigin(policy, origin)) return any ? {} : { vary: 'Origin' };
  return {
    'access-control-allow-origin': any ? '*' : origin,
    ...(any ? {} : { vary: 'Origin' }),
    ...((policy.credentials ?? false) ? { 'access-control-allow-credentials': 'true' } : {}),
    ...(policy.exposeHeaders?.length
      ? { 'access-control-expose-headers': policy.exposeHeaders.join(', ') }
      : {}),
  };
}

export type Preflight =
  | { readonly ok: true; readonly headers: Record<string, string> }
  | { readonly ok: false; readonly reason: string };

/**
 * Judges a preflight (`OPTIONS` with Origin and Access-Control-Request-Method) for the route
 * that the requested method reaches on this path; `pathMethods` are all the path has.
 */
export function preflight(
  policy: CorsPolicy | undefined,
  origin: string,
  headers: IncomingHttpHeaders,
  pathMethods: readonly HttpMethod[],
): Preflight {
  if (policy === undefined) return { ok: false, reason: 'this route takes no cross-origin requests' };
  if (!allowsOrigin(policy, origin)) return { ok: false, reason: `origin ${origin} is not allowed here` };
  const method = String(headers['access-control-request-method'] ?? '');
  const methods = policy.methods ?? pathMethods;
  if (!methods.includes(method as HttpMethod))
    return { ok: false, reason: `method ${method} is not allowed here` };
  const asked = String(headers['access-control-request-headers'] ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  const allowed = new Set(policy.headers ?? []);
  const refused = asked.filter((h) => !SAFELISTED.has(h) && !allowed.has(h));
  if (refused.length > 0) return { ok: false, reason: `request header ${refused[0]} is not allowed here` };
  return {
    ok: true,
    headers: {
      ...corsHeaders(policy, origin),
      'access-control-allow-methods': methods.join(', '),
      ...(asked.length > 0 ? { 'access-control-allow-headers': asked.join(', ') } : {}),
      'access-control-max-age': String(policy.maxAgeSeconds ?? CORS_MAX_AGE_SECONDS),
    },
  };
}
