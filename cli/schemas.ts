// `nonstop schemas --out DIR [--check]`: writes each config kind's JSON Schema for editors.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { editorSchemaFiles } from '../config/json-schemas.js';
import { writeAtomically } from '../lib/write-atomically.js';
import { parseCommandArgs, UsageError, type Command } from './command.js';

/** The file's text, or undefined when it cannot be read. */
function readOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export const schemasCommand: Command = {
  name: 'schemas',
  help: `Usage: nonstop schemas --out DIR [--check]

Writes DIR/<kind>.json for every config kind (gateway, broker, core, routes, guard, knock):
the schema each daemon validates its config file with, as a standalone JSON Schema (draft-07).
A config file that names one, for example "$schema": "../schemas/gateway.json", gets
completion and checking in an editor; nonstop itself ignores "$schema".

Options:
  --out DIR    the folder to write to (created if missing)
  --check      write nothing: list the files in DIR that are missing or stale; exit 1 if any
  -h, --help   show this help`,
  run(argv) {
    const { values } = parseCommandArgs(argv, {
      out: { type: 'string', short: 'o' },
      check: { type: 'boolean' },
    });
    if (values.help) {
      console.log(this.help);
      return Promise.resolve(0);
    }
    if (values.out === undefined) throw new UsageError('schemas needs --out DIR');
    const dir = values.out;
    const files = editorSchemaFiles();
    if (values.check === true) {
      const stale = [...files].filter(([name, text]) => readOrUndefined(join(dir, name)) !== text);
      for (const [name] of stale) console.error(`${join(dir, name)}: missing or stale`);
      if (stale.length > 0) console.error(`run: nonstop schemas --out ${dir}`);
      return Promise.resolve(stale.length === 0 ? 0 : 1);
    }
    mkdirSync(dir, { recursive: true });
    for (const [name, text] of files) {
      const file = join(dir, name);
      writeAtomically(file, text);
      console.log(`wrote ${file}`);
    }
    return Promise.resolve(0);
  },
};
