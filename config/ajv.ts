// Ajv instances used by nonstop. Config files and route schemas are compiled strictly:
// an unknown keyword or an ambiguous type is a mistake worth failing on at start.
// Validators stop at the first error unless asked for all: request data comes from anyone, and
// with `allErrors` a 64 KiB body of unknown keys costs thousands of errors per request. Config
// files, written by an operator and read once, opt in (config/load.ts) to report every mistake.
import { Ajv, type Options } from 'ajv';
import addFormatsImport from 'ajv-formats';

// ajv-formats ships CommonJS with a default export; normalise it for NodeNext.
const addFormats = addFormatsImport as unknown as (ajv: Ajv) => Ajv;

export function createAjv(options: Options = {}): Ajv {
  const ajv = new Ajv({ strict: true, allErrors: false, ...options });
  addFormats(ajv);
  return ajv;
}
