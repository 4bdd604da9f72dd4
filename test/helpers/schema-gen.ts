// Random values from the subset of JSON Schema route schemas use (objects, strings with
// lengths, patterns and formats, integers, enums, arrays), and mutations that a correct
// validator must refuse. Seeded, so a failure can be replayed.

export type Schema = Readonly<Record<string, unknown>>;

export class Rng {
  constructor(private state: number) {}
  next(): number {
    // mulberry32
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  bool(): boolean {
    return this.next() < 0.5;
  }
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';

function hex(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += '0123456789abcdef'[rng.int(0, 15)];
  return s;
}

function stringFor(schema: Schema, rng: Rng): string {
  const min = (schema.minLength as number | undefined) ?? 0;
  const max = Math.min((schema.maxLength as number | undefined) ?? 64, min + 40);
  switch (schema.format) {
    case 'uuid':
      return `${hex(rng, 8)}-${hex(rng, 4)}-4${hex(rng, 3)}-a${hex(rng, 3)}-${hex(rng, 12)}`;
    case 'date':
      return `20${rng.int(10, 39)}-0${rng.int(1, 9)}-${rng.int(10, 28)}`;
    case 'email':
      return `${ALNUM[rng.int(0, 25)]}${rng.int(0, 999)}@example.org`;
  }
  const length = rng.int(Math.max(min, 1), Math.max(max, 1));
  // Patterns in route schemas are character classes of lower-case letters, digits and '-'.
  let s = '';
  for (let i = 0; i < length; i++)
    s += schema.pattern !== undefined ? rng.pick([...ALNUM, '-']) : rng.pick([...ALNUM, ' ', 'é', '"']);
  return s;
}

export function generate(schema: Schema, rng: Rng): unknown {
  if (Array.isArray(schema.enum)) return rng.pick(schema.enum as unknown[]);
  switch (schema.type) {
    case 'object': {
      const props = (schema.properties ?? {}) as Record<string, Schema>;
      const required = new Set((schema.required as string[] | undefined) ?? []);
      const out: Record<string, unknown> = {};
      for (const [name, child] of Object.entries(props)) {
        if (required.has(name) || rng.bool()) out[name] = generate(child, rng);
      }
      return out;
    }
    case 'string':
      return stringFor(schema, rng);
    case 'integer': {
      const min = (schema.minimum as number | undefined) ?? -1000;
      const max = (schema.maximum as number | undefined) ?? 1000;
      return rng.int(min, max);
    }
    case 'array': {
      const items = schema.items as Schema;
      const n = rng.int(0, Math.min((schema.maxItems as number | undefined) ?? 4, 4));
      const out: unknown[] = [];
      for (let i = 0; i < n * 3 && out.length < n; i++) {
        const v = generate(items, rng);
        if (schema.uniqueItems !== true || !out.some((o) => JSON.stringify(o) === JSON.stringify(v)))
          out.push(v);
      }
      return out;
    }
    case 'boolean':
      return rng.bool();
    default:
      throw new Error(`schema-gen: unsupported schema ${JSON.stringify(schema)}`);
  }
}

export interface Mutation {
  readonly name: string;
  readonly value: unknown;
}

/** Values derived from a valid object that break the schema in one known way each. */
export function mutations(schema: Schema, valid: Record<string, unknown>, rng: Rng): Mutation[] {
  const props = (schema.properties ?? {}) as Record<string, Schema>;
  const out: Mutation[] = [
    { name: 'unknown property', value: { ...valid, [`x${rng.int(0, 99)}`]: 1 } },
    {
      name: 'prototype-pollution key',
      // Spliced into the JSON text, so that `__proto__` is an own key as it would be off the wire.
      value: JSON.parse(
        Object.keys(valid).length === 0
          ? '{"__proto__":{"polluted":1}}'
          : `{"__proto__":{"polluted":1},${JSON.stringify(valid).slice(1)}`,
      ) as unknown,
    },
    { name: 'not an object', value: rng.pick(['text', 42, [], true]) },
  ];
  for (const name of (schema.required as string[] | undefined) ?? []) {
    const { [name]: _dropped, ...rest } = valid;
    out.push({ name: `missing ${name}`, value: rest });
  }
  for (const [name, child] of Object.entries(props)) {
    if (child.type === 'string' && typeof child.maxLength === 'number') {
      out.push({ name: `${name} too long`, value: { ...valid, [name]: 'a'.repeat(child.maxLength + 1) } });
    }
    if (child.type === 'string' && typeof child.minLength === 'number' && child.minLength > 0) {
      out.push({ name: `${name} too short`, value: { ...valid, [name]: '' } });
    }
    if (Array.isArray(child.enum))
      out.push({ name: `${name} outside enum`, value: { ...valid, [name]: 'zzz-not-allowed' } });
    if (child.type === 'array' && typeof child.maxItems === 'number') {
      const item = generate(child.items as Schema, rng);
      const many = Array.from({ length: child.maxItems + 1 }, (_, i) =>
        typeof item === 'string' ? `${i}x` : item,
      );
      out.push({ name: `${name} too many items`, value: { ...valid, [name]: many } });
    }
    if (child.type === 'integer' && typeof child.maximum === 'number') {
      out.push({ name: `${name} above maximum`, value: { ...valid, [name]: child.maximum + 1 } });
    }
    if (child.type === 'string' && child.format === 'uuid') {
      out.push({ name: `${name} not a uuid`, value: { ...valid, [name]: 'not-a-uuid' } });
    }
    out.push({
      name: `${name} wrong type`,
      value: { ...valid, [name]: child.type === 'string' ? { nested: true } : 'x y' },
    });
  }
  return out;
}
