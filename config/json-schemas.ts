// The config schemas as standalone JSON Schema files, for editors: a config file that names one
// in `"$schema"` gets completion and checking while it is written. Generated from the schemas
// the daemons validate with (config/schemas/*.ts), so the two cannot drift: the repository's
// copies (config/schemas/*.json) are checked to be current by the unit tests.
import { CONFIG_KINDS, configSchema, type ConfigKind } from './load.js';

const DRAFT = 'http://json-schema.org/draft-07/schema#';

/** The file name of `kind`'s schema: `gateway.json` and so on. */
export const schemaFileName = (kind: ConfigKind): string => `${kind}.json`;

/**
 * `kind`'s schema as an editor reads it: the draft named, a title, and without Ajv's internal
 * `$id` (a relative `nonstop/gateway` would make an editor resolve references against it).
 */
export function editorSchema(kind: ConfigKind): object {
  const { $id: _id, ...schema } = configSchema(kind) as Record<string, unknown>;
  return { $schema: DRAFT, title: `nonstop ${kind} config`, ...schema };
}

/** Every kind's schema file: name → text (two-space JSON and a final newline). */
export function editorSchemaFiles(): Map<string, string> {
  return new Map(
    CONFIG_KINDS.map((kind) => [schemaFileName(kind), `${JSON.stringify(editorSchema(kind), null, 2)}\n`]),
  );
}
