// Turns Ajv's errors into messages that name the field and say what was expected.
import type { ErrorObject } from 'ajv';

/** `/limits/maxBodyBytes` → `limits.maxBodyBytes`, `/routes/2/name` → `routes[2].name`. */
export function fieldName(instancePath: string, child?: string): string {
  const parts = instancePath.split('/').slice(1);
  if (child !== undefined) parts.push(child);
  let out = '';
  for (const raw of parts) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(part)) out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out === '' ? '(top level)' : out;
}

export interface FieldProblem {
  readonly field: string;
  readonly expected: string;
}

export function describeErrors(errors: readonly ErrorObject[] | null | undefined): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    const problem = describeError(e);
    const key = `${problem.field}\u0000${problem.expected}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(problem);
  }
  return problems;
}

function describeError(e: ErrorObject): FieldProblem {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { field: fieldName(e.instancePath, String(params.missingProperty)), expected: 'is required' };
    case 'additionalProperties':
      return {
        field: fieldName(e.instancePath, String(params.additionalProperty)),
        expected: 'is not a known field (check its spelling)',
      };
    case 'enum':
      return {
        field: fieldName(e.instancePath),
        expected: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      };
    case 'const':
      return { field: fieldName(e.instancePath), expected: `must be ${JSON.stringify(params.allowedValue)}` };
    default:
      return { field: fieldName(e.instancePath), expected: e.message ?? `fails "${e.keyword}"` };
  }
}

export function formatProblems(file: string, problems: readonly FieldProblem[]): string {
  return problems.map((p) => `${file}: field "${p.field}" ${p.expected}`).join('\n');
}
