// Ajv instances used by nonstop. Config files and route schemas are compiled strictly:
// an unknown keyword or an ambiguous type is a mistake worth failing on at start.
import { Ajv, type Options } from 'ajv';
import addFormatsImport from 'ajv-formats';

// ajv-formats ships CommonJS with a default export; normalise it for NodeNext.
const addFormats = addFormatsImport as unknown as (ajv: Ajv) => Ajv;

export function createAjv(options: Options = {}): Ajv {
  const ajv = new Ajv({ strict: true, allErrors: true, ...options });
  addFormats(ajv);
  return ajv;
}
