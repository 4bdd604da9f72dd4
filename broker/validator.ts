// Checks a queued envelope against its route's schemas (compiled once at start). Params and
// query arrive as strings, so they are checked as copies coerced to the declared types; the
// envelope keeps the client's strings, which is what the envelope schema (and the core)
// accept. The body is checked in place, so the core receives it with schema defaults filled in.
import { compileRoutes, type RouteValidators } from '../config/routes.js';
import type { RoutesConfig } from '../config/schemas/routes.js';
import type { ErrorObject } from 'ajv';
import { describeErrors } from '../config/errors-format.js';
import type { Envelope } from '../lib/envelope.js';

export interface SchemaProblem {
  /** Which part of the request: params, query or body. */
  readonly in: 'params' | 'query' | 'body' | 'route';
  readonly field: string;
  readonly problem: string;
}

export type Validation = { readonly ok: true } | { readonly ok: false; readonly problems: SchemaProblem[] };

const MAX_PROBLEMS = 20;

export class RequestValidator {
  private readonly validators: ReadonlyMap<string, RouteValidators>;
  private readonly methods = new Map<string, string>();

  constructor(file: string, routes: RoutesConfig) {
    this.validators = compileRoutes(file, routes);
    for (const r of routes.routes) this.methods.set(r.name, r.method);
  }

  /** Validates the request parts of an envelope; fills in body defaults in place. */
  validate(envelope: Envelope): Validation {
    const v = this.validators.get(envelope.route);
    if (v === undefined || this.methods.get(envelope.route) !== envelope.method) {
      return {
        ok: false,
        problems: [{ in: 'route', field: envelope.route, problem: 'is not a known route' }],
      };
    }
    const problems: SchemaProblem[] = [];
    if (!v.params({ ...envelope.params })) problems.push(...describe('params', v.params.errors));
    if (!v.query({ ...envelope.query })) problems.push(...describe('query', v.query.errors));
    if (!v.body(envelope.body)) problems.push(...describe('body', v.body.errors));
    return problems.length === 0 ? { ok: true } : { ok: false, problems: problems.slice(0, MAX_PROBLEMS) };
  }
}

function describe(part: SchemaProblem['in'], errs: ErrorObject[] | null | undefined): SchemaProblem[] {
  return describeErrors(errs).map((p) => ({
    in: part,
    field: p.field === '(top level)' ? part : p.field,
    problem: p.expected,
  }));
}
