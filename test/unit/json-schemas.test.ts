// The config schemas written as files for editors: current with the code, usable by a plain
// JSON Schema validator, and accepted by nonstop when a config file names one in "$schema".
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import addFormatsImport from 'ajv-formats';
import { editorSchemaFiles } from '../../config/json-schemas.js';
import { CONFIG_KINDS, kindOf, parseJson, readConfigText, validateConfig } from '../../config/load.js';
import { effectiveLogLevel } from '../../lib/log.js';
import { repoRoot } from '../helpers/files.js';

const addFormats = addFormatsImport as unknown as (ajv: Ajv) => Ajv;
const SCHEMA_DIR = join(repoRoot, 'config/schemas');

test('config/schemas/*.json are what `nonstop schemas` writes today', () => {
  const files = editorSchemaFiles();
  assert.deepEqual([...files.keys()].sort(), CONFIG_KINDS.map((k) => `${k}.json`).sort());
  for (const [name, text] of files) {
    const written = readFileSync(join(SCHEMA_DIR, name), 'utf8');
    assert.ok(
      written === text,
      `${name} is stale: run \`node dist/cli/index.js schemas --out config/schemas\``,
    );
  }
});

test('a plain JSON Schema validator takes each file: the examples pass, a broken config fails', () => {
  // Not nonstop's Ajv: what an editor's validator would be, without our strictness or defaults.
  const ajv = addFormats(new Ajv({ strict: false, allErrors: true }));
  for (const kind of CONFIG_KINDS) {
    const validate = ajv.compile(
      JSON.parse(readFileSync(join(SCHEMA_DIR, `${kind}.json`), 'utf8')) as object,
    );
    const example = JSON.parse(
      readFileSync(join(repoRoot, 'config/examples', `${kind}.json`), 'utf8'),
    ) as Record<string, unknown>;
    assert.equal(example.$schema, `../schemas/${kind}.json`, `the ${kind} example names its schema`);
    assert.ok(validate(example), `${kind} example: ${JSON.stringify(validate.errors)}`);
    assert.equal(validate({ ...example, unknownField: 1 }), false, `${kind}: an unknown field is refused`);
  }
});

test('nonstop accepts "$schema" as a string in every kind, and nothing else in its place', () => {
  for (const kind of CONFIG_KINDS) {
    const file = join(repoRoot, 'config/examples', `${kind}.json`);
    const doc = parseJson(file, readConfigText(file)) as Record<string, unknown>;
    assert.equal(kindOf(file, doc), kind);
    assert.doesNotThrow(() => validateConfig(kind, file, doc));
    assert.throws(
      () => validateConfig(kind, file, { ...doc, $schema: 42 }),
      /field "\$schema" must be string/,
      `${kind}: a non-string $schema`,
    );
  }
});

test('NONSTOP_LOG_LEVEL overrides the config, and an unknown level fails naming the variable', () => {
  assert.equal(effectiveLogLevel('warn', {}), 'warn');
  assert.equal(effectiveLogLevel(undefined, {}), 'info');
  assert.equal(effectiveLogLevel('warn', { NONSTOP_LOG_LEVEL: 'debug' }), 'debug');
  assert.equal(effectiveLogLevel('warn', { NONSTOP_LOG_LEVEL: '' }), 'warn');
  assert.throws(
    () => effectiveLogLevel('info', { NONSTOP_LOG_LEVEL: 'loud' }),
    /NONSTOP_LOG_LEVEL must be one of fatal, error/,
  );
});
