// Loads a config file: read, parse, validate against its kind's schema (filling defaults),
// resolve relative paths against the file's folder, then freeze. Any problem fails at start
// with the file, the field and what was expected.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { ValidateFunction } from 'ajv';
import { errors } from '../lib/errors.js';
import { createAjv } from './ajv.js';
import { describeErrors, formatProblems, type FieldProblem } from './errors-format.js';
import { gatewayProblems } from './gateway-checks.js';
import { metricsListenerProblems } from './schemas/metrics-listener.js';
import { brokerSchema, type BrokerConfig } from './schemas/broker.js';
import { coreSchema, type CoreConfig } from './schemas/core.js';
import { gatewaySchema, type GatewayConfig } from './schemas/gateway.js';
import { guardSchema, type GuardConfig } from './schemas/guard.js';
import { knockSchema, type KnockConfig } from './schemas/knock.js';
import { routesSchema, type RoutesConfig } from './schemas/routes.js';

export interface ConfigKinds {
  gateway: GatewayConfig;
  broker: BrokerConfig;
  core: CoreConfig;
  routes: RoutesConfig;
  guard: GuardConfig;
  knock: KnockConfig;
}
export type ConfigKind = keyof ConfigKinds;
export const CONFIG_KINDS: readonly ConfigKind[] = ['gateway', 'broker', 'core', 'routes', 'guard', 'knock'];

const SCHEMAS: Record<ConfigKind, object> = {
  gateway: gatewaySchema,
  broker: brokerSchema,
  core: coreSchema,
  routes: routesSchema,
  guard: guardSchema,
  knock: knockSchema,
};

/** The JSON Schema (Ajv's draft-07) that a config file of `kind` is validated against. */
export function configSchema(kind: ConfigKind): object {
  return SCHEMAS[kind];
}

/** Fields holding file paths, resolved relative to the config file's folder ('*': each item). */
const PATH_FIELDS: Record<ConfigKind, readonly (readonly string[])[]> = {
  gateway: [
    ['routes'],
    ['https', 'cert'],
    ['https', 'key'],
    ['https', 'acme', 'stateDir'],
    ['https', 'acme', 'caFile'],
    ['redis', 'passwordFile'],
    ['redis', 'endpoints', '*', 'passwordFile'],
    ['idempotency', 'secretFile'],
  ],
  broker: [
    ['routes'],
    ['redis', 'passwordFile'],
    ['core', 'ca'],
    ['core', 'cert'],
    ['core', 'key'],
    ['gateways', '*', 'ssh', 'privateKey'],
    ['gateways', '*', 'ssh', 'knock', 'rotating', 'secretFile'],
    ['gateways', '*', 'ssh', 'knock', 'spa', 'keyFile'],
  ],
  core: [
    ['routes'],
    ['tls', 'ca'],
    ['tls', 'cert'],
    ['tls', 'key'],
    ['database', 'dataDir'],
    ['upstreams', '*', 'ca'],
  ],
  routes: [],
  guard: [],
  knock: [],
};

/** What a kind's schema cannot say, checked after it (defaults filled, before paths resolve). */
const CHECKS: { readonly [K in ConfigKind]?: (config: ConfigKinds[K]) => FieldProblem[] } = {
  gateway: gatewayProblems,
  broker: (config) =>
    config.gateways.flatMap((gw, i) => {
      const knock = gw.ssh?.knock;
      const ways =
        knock === undefined
          ? []
          : (['sequence', 'rotating', 'spa'] as const).filter((w) => knock[w] !== undefined);
      return ways.length > 1
        ? [
            {
              field: `gateways[${i}].ssh.knock`,
              expected: `holds ${ways.join(' and ')}: one way to knock, not several`,
            },
          ]
        : [];
    }),
  core: (config) => metricsListenerProblems('metrics', config.metrics),
  guard: (config) => metricsListenerProblems('metrics', config.metrics),
};

// Every mistake in a config file at once: the operator fixes them in one go.
const ajv = createAjv({ useDefaults: true, allErrors: true });
const validators = new Map<ConfigKind, ValidateFunction>();

function validatorFor(kind: ConfigKind): ValidateFunction {
  let v = validators.get(kind);
  if (v === undefined) {
    v = ajv.compile(SCHEMAS[kind]);
    validators.set(kind, v);
  }
  return v;
}

export function readConfigText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    throw errors.CONFIG_UNREADABLE(`${file}: cannot read config file (${reason})`, undefined, { cause: err });
  }
}

export function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw errors.CONFIG_INVALID(`${file}: not valid JSON (${(err as Error).message})`, undefined, {
      cause: err,
    });
  }
}

/** The `kind` field of a parsed config document, or a clear error if it has none. */
export function kindOf(file: string, doc: unknown): ConfigKind {
  const kind = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>).kind : undefined;
  if (typeof kind === 'string' && (CONFIG_KINDS as readonly string[]).includes(kind))
    return kind as ConfigKind;
  throw errors.CONFIG_INVALID(
    `${file}: field "kind" must be one of ${CONFIG_KINDS.map((k) => `"${k}"`).join(', ')}` +
      (kind === undefined ? ' (it is missing)' : ` (got ${JSON.stringify(kind)})`),
  );
}

/** Validates an already parsed document; `file` names it in errors and anchors relative paths. */
export function validateConfig<K extends ConfigKind>(kind: K, file: string, doc: unknown): ConfigKinds[K] {
  const copy = structuredClone(doc);
  const validate = validatorFor(kind);
  if (!validate(copy)) {
    const problems = describeErrors(validate.errors);
    throw errors.CONFIG_INVALID(formatProblems(file, problems), problems);
  }
  const check = CHECKS[kind];
  const problems = check?.(copy as ConfigKinds[K]) ?? [];
  if (problems.length > 0) throw errors.CONFIG_INVALID(formatProblems(file, problems), problems);
  resolvePaths(copy as Record<string, unknown>, PATH_FIELDS[kind], dirname(resolve(file)));
  return deepFreeze(copy) as ConfigKinds[K];
}

export function loadConfig<K extends ConfigKind>(kind: K, file: string): ConfigKinds[K] {
  const doc = parseJson(file, readConfigText(file));
  const found = kindOf(file, doc);
  if (found !== kind) {
    throw errors.CONFIG_INVALID(`${file}: field "kind" must be "${kind}" here (got "${found}")`);
  }
  return validateConfig(kind, file, doc);
}

function resolvePaths(
  doc: Record<string, unknown>,
  fields: readonly (readonly string[])[],
  base: string,
): void {
  for (const path of fields) resolvePath(doc, path, base);
}

function resolvePath(node: unknown, path: readonly string[], base: string): void {
  if (typeof node !== 'object' || node === null) return;
  const [key, ...rest] = path;
  if (key === undefined) return;
  if (key === '*') {
    if (Array.isArray(node)) for (const item of node) resolvePath(item, rest, base);
    return;
  }
  const record = node as Record<string, unknown>;
  const value = record[key];
  if (rest.length > 0) resolvePath(value, rest, base);
  else if (typeof value === 'string') record[key] = resolve(base, value);
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
