// Checks a queued envelope against its route's schemas (compiled once at start). Params and
// query arrive as strings, so they are checked as copies coerced to the declared types; the
// envelope keeps the client's strings, which is what the envelope schema (and the core)
// accept. The body is checked in place, so the core receives it with schema defaults filled in
// (and a form's or multipart body's fields coerced to their declared types).
// Validators stop at each part's first error (config/ajv.ts), so a refusal costs as little as
// it says: at most one problem for each of params, query and body, fields clipped in length.
import { compileRoutes, type RouteValidators } from '../config/routes.js';
import type { RoutesConfig } from '../config/schemas/routes.js';
import type { ErrorObject } from 'ajv';
import { describeErrors } from '../config/errors-format.js';
import type { Envelope } from '../lib/envelope.js';
import { clip } from '../lib/log-fields.js';

export interface SchemaProblem {
  /** Which part of the request: params, query or body. */
  readonly in: 'params' | 'query' | 'body' | 'route';
  readonly field: string;
  readonly problem: string;
}

export type Validation = { readonly ok: true } | { readonly ok: false; readonly problems: SchemaProblem[] };

/** Problems in one refusal (each part stops at its first: three at most today). */
const MAX_PROBLEMS = 3;
/** A field's name as a problem quotes it (a body's unknown key may be as long as the body). */
const MAX_FIELD_CHARS = 200;

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
        problems: [
          { in: 'route', field: clip(envelope.route, MAX_FIELD_CHARS), problem: 'is not a known route' },
        ],
      };
    }
    const problems: SchemaProblem[] = [];
    if (!v.params({ ...envelope.params })) problems.push(...describe('params', v.params.errors));
    if (!v.query({ ...envelope.query })) problems.push(...describe('query', v.query.errors));
    // Form and multipart fields arrive as strings: coerced in place to the declared types.
    const fields = envelope.bodyType === 'form' || envelope.bodyType === 'multipart';
    const body = fields ? v.fieldsBody : v.body;
    if (!body(envelope.body)) problems.push(...describe('body', body.errors));
    return problems.length === 0 ? { ok: true } : { ok: false, problems: problems.slice(0, MAX_PROBLEMS) };
  }
}

function describe(part: SchemaProblem['in'], errs: ErrorObject[] | null | undefined): SchemaProblem[] {
  return describeErrors(errs).map((p) => ({
    in: part,
    field: p.field === '(top level)' ? part : clip(p.field, MAX_FIELD_CHARS),
    problem: p.expected,
  }));
}
