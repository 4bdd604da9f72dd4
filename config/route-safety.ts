// Refuses route schemas that would let unbounded or unexpected data through: every object
// must forbid unknown properties, every string and array must be bounded, and every schema
// must say what type it accepts. Checked at start, so a lax schema never reaches production.

const COMPOSITE_KEYS = ['anyOf', 'oneOf', 'allOf'] as const;

export function findUnsafeSchemaParts(schema: unknown, where: string): string[] {
  const problems: string[] = [];
  walk(schema, where, problems);
  return problems;
}

function walk(node: unknown, where: string, problems: string[]): void {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) {
    problems.push(`${where}: must be a schema object`);
    return;
  }
  const s = node as Record<string, unknown>;
  if ('$ref' in s) problems.push(`${where}: "$ref" is not supported in route schemas; inline the schema`);
  if ('patternProperties' in s)
    problems.push(`${where}: "patternProperties" is not allowed; list properties`);

  for (const key of COMPOSITE_KEYS) {
    const branches = s[key];
    if (Array.isArray(branches)) branches.forEach((b, i) => walk(b, `${where}.${key}[${i}]`, problems));
  }
  const bounded = 'enum' in s || 'const' in s;
  const types = typeof s.type === 'string' ? [s.type] : Array.isArray(s.type) ? (s.type as unknown[]) : [];
  if (types.length === 0 && !bounded && !COMPOSITE_KEYS.some((k) => k in s)) {
    problems.push(`${where}: must declare "type" (or "enum"/"const")`);
  }

  if (types.includes('object') || 'properties' in s) {
    if (s.additionalProperties !== false) {
      problems.push(`${where}: objects must set "additionalProperties": false`);
    }
    const props = s.properties;
    if (typeof props === 'object' && props !== null) {
      for (const [name, child] of Object.entries(props)) walk(child, `${where}.properties.${name}`, problems);
    }
  }
  if (types.includes('string') && !bounded && typeof s.maxLength !== 'number') {
    problems.push(`${where}: strings must set "maxLength"`);
  }
  if (types.includes('array')) {
    if (typeof s.maxItems !== 'number') problems.push(`${where}: arrays must set "maxItems"`);
    if (s.items === undefined) problems.push(`${where}: arrays must describe their "items"`);
    else if (s.items !== false) walk(s.items, `${where}.items`, problems);
  }
}
