// The route table: loaded and checked once at start by every tier. Route schemas are checked
// for strictness and compiled once here; the broker validates requests with the result.
import type { ValidateFunction } from 'ajv';
import { errors } from '../lib/errors.js';
import { createAjv } from './ajv.js';
import { loadConfig, validateConfig } from './load.js';
import { findUnsafeSchemaParts } from './route-safety.js';
import type { RouteDefinition, RoutesConfig } from './schemas/routes.js';

export type { RouteDefinition, RoutesConfig };

export function loadRoutes(file: string): RoutesConfig {
  const routes = loadConfig('routes', file);
  checkRoutes(file, routes);
  return routes;
}

export function parseRoutes(file: string, doc: unknown): RoutesConfig {
  const routes = validateConfig('routes', file, doc);
  checkRoutes(file, routes);
  return routes;
}

/** Names of the `:param` segments of a route path, in order. */
export function pathParams(path: string): string[] {
  return path
    .split('/')
    .filter((seg) => seg.startsWith(':'))
    .map((seg) => seg.slice(1));
}

function checkRoutes(file: string, config: RoutesConfig): void {
  const problems: string[] = [];
  const names = new Set<string>();
  const shapes = new Map<string, string>();
  config.routes.forEach((route, i) => {
    const where = `routes[${i}]`;
    if (names.has(route.name)) problems.push(`${where}.name: "${route.name}" is used by another route`);
    names.add(route.name);
    // Two routes whose paths differ only in parameter names would shadow each other.
    const shape = `${route.method} ${route.path.replace(/:[^/]+/g, ':')}`;
    const clash = shapes.get(shape);
    if (clash !== undefined) problems.push(`${where}.path: same method and path shape as route "${clash}"`);
    shapes.set(shape, route.name);

    const params = pathParams(route.path);
    if (new Set(params).size !== params.length) problems.push(`${where}.path: a parameter name is repeated`);
    const paramSchema = route.schema.params;
    if (params.length > 0 && paramSchema === undefined) {
      problems.push(
        `${where}.schema.params: is required because the path has parameters (${params.join(', ')})`,
      );
    }
    if (paramSchema !== undefined) {
      const declared = Object.keys((paramSchema.properties as Record<string, unknown> | undefined) ?? {});
      const missing = params.filter((p) => !declared.includes(p));
      const extra = declared.filter((p) => !params.includes(p));
      if (missing.length > 0)
        problems.push(`${where}.schema.params: does not describe ${missing.join(', ')}`);
      if (extra.length > 0)
        problems.push(`${where}.schema.params: describes ${extra.join(', ')}, not in the path`);
    }
    if (route.schema.body !== undefined && (route.method === 'GET' || route.method === 'DELETE')) {
      problems.push(`${where}.schema.body: ${route.method} requests carry no body`);
    }
    // Any origin with credentials would let every site read a signed-in user's answers.
    const cors = route.cors === false ? undefined : (route.cors ?? config.cors);
    if (cors !== undefined && cors.origins.includes('*') && cors.credentials === true) {
      problems.push(`${where}.cors: "origins": ["*"] cannot go with "credentials": true; list the origins`);
    }
    // A text/plain body is a string; every other kind decodes into an object.
    const text = route.bodyTypes.includes('text');
    if (text && route.bodyTypes.length > 1) {
      problems.push(`${where}.bodyTypes: text takes a string body, so it cannot be mixed with other types`);
    }
    if (route.schema.body === undefined && !(route.bodyTypes.length === 1 && route.bodyTypes[0] === 'json')) {
      problems.push(`${where}.bodyTypes: ${route.bodyTypes.join(', ')} bodies need a schema.body`);
    }
    for (const part of ['params', 'query', 'body'] as const) {
      const schema = route.schema[part];
      if (schema === undefined) continue;
      const at = `${where}.schema.${part}`;
      const type = part === 'body' && text ? 'string' : 'object';
      if (schema.type !== type) problems.push(`${at}: must have "type": "${type}"`);
      problems.push(...findUnsafeSchemaParts(schema, at));
    }
  });
  if (problems.length > 0) {
    throw errors.ROUTE_SCHEMA_UNSAFE(
      problems.map((p) => `${file}: field "${p.replace(/: /, '" ')}`).join('\n'),
    );
  }
  // Compiling proves every schema is valid JSON Schema under Ajv's strict mode.
  compileRoutes(file, config);
}

export interface RouteValidators {
  readonly params: ValidateFunction;
  readonly query: ValidateFunction;
  readonly body: ValidateFunction;
  /** The body schema over a form or multipart body, whose fields come as strings: coercing. */
  readonly fieldsBody: ValidateFunction;
}

const EMPTY_OBJECT = { type: 'object', additionalProperties: false, maxProperties: 0 } as const;
const NO_BODY = { type: 'null' } as const;

/**
 * Compiles every route's schemas once. Params and query arrive as strings, so their
 * validators coerce to the declared types; bodies are JSON and are not coerced.
 * A route without a query schema accepts no query parameters; one without a body schema
 * accepts no body.
 */
export function compileRoutes(file: string, config: RoutesConfig): ReadonlyMap<string, RouteValidators> {
  const coercing = createAjv({ coerceTypes: true, useDefaults: true });
  const exact = createAjv({ useDefaults: true });
  const out = new Map<string, RouteValidators>();
  config.routes.forEach((route, i) => {
    try {
      out.set(route.name, {
        params: coercing.compile(route.schema.params ?? EMPTY_OBJECT),
        query: coercing.compile(route.schema.query ?? EMPTY_OBJECT),
        body: exact.compile(route.schema.body ?? NO_BODY),
        fieldsBody: coercing.compile(route.schema.body ?? NO_BODY),
      });
    } catch (err) {
      throw errors.ROUTE_SCHEMA_UNSAFE(
        `${file}: field "routes[${i}].schema" ${(err as Error).message}`,
        undefined,
        {
          cause: err,
        },
      );
    }
  });
  return out;
}
