// Matches method + path against the route table. Static paths are a map lookup; paths with
// `:param` segments are compared segment by segment. Built once at start.
import type { HttpMethod, RouteDefinition, RoutesConfig } from '../config/schemas/routes.js';

export type RouteMatch =
  | { readonly kind: 'found'; readonly route: RouteDefinition; readonly params: Record<string, string> }
  | { readonly kind: 'not-found' }
  | { readonly kind: 'method-not-allowed'; readonly allow: readonly HttpMethod[] }
  | { readonly kind: 'bad-path' };

interface Pattern {
  readonly route: RouteDefinition;
  /** Literal segment, or null where a parameter goes. */
  readonly segments: readonly (string | null)[];
  readonly names: readonly string[];
}

export class Router {
  private readonly staticRoutes = new Map<string, Map<string, RouteDefinition>>();
  private readonly patterns: Pattern[] = [];

  constructor(config: RoutesConfig) {
    for (const route of config.routes) {
      if (!route.path.includes(':')) {
        let byMethod = this.staticRoutes.get(route.path);
        if (byMethod === undefined)
          this.staticRoutes.set(route.path, (byMethod = new Map<string, RouteDefinition>()));
        byMethod.set(route.method, route);
        continue;
      }
      const parts = route.path.split('/').slice(1);
      this.patterns.push({
        route,
        segments: parts.map((p) => (p.startsWith(':') ? null : p)),
        names: parts.filter((p) => p.startsWith(':')).map((p) => p.slice(1)),
      });
    }
  }

  /** `path` is the raw (still percent-encoded) path without the query string. */
  match(method: string, path: string): RouteMatch {
    const allow = new Set<HttpMethod>();
    const byMethod = this.staticRoutes.get(path);
    if (byMethod !== undefined) {
      const route = byMethod.get(method);
      if (route !== undefined) return { kind: 'found', route, params: {} };
      for (const m of byMethod.keys()) allow.add(m as HttpMethod);
    }
    const parts = path.split('/').slice(1);
    for (const pattern of this.patterns) {
      if (pattern.segments.length !== parts.length) continue;
      const values = matchSegments(pattern.segments, parts);
      if (values === null) continue;
      if (pattern.route.method !== method) {
        allow.add(pattern.route.method);
        continue;
      }
      const params: Record<string, string> = {};
      for (let i = 0; i < values.length; i++) {
        const decoded = decodeSegment(values[i]!);
        if (decoded === null) return { kind: 'bad-path' };
        params[pattern.names[i]!] = decoded;
      }
      return { kind: 'found', route: pattern.route, params };
    }
    return allow.size > 0 ? { kind: 'method-not-allowed', allow: [...allow].sort() } : { kind: 'not-found' };
  }
}

function matchSegments(segments: readonly (string | null)[], parts: readonly string[]): string[] | null {
  const values: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const expected = segments[i];
    const actual = parts[i]!;
    if (expected === null) {
      if (actual === '') return null;
      values.push(actual);
    } else if (expected !== actual) {
      return null;
    }
  }
  return values;
}

function decodeSegment(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}
