// The query string, parsed into single values or arrays, bounded in the number of keys.
import { errors } from '../../lib/errors.js';
import { parseQuery } from '../envelope.js';
import { refusal, type Routed, type StepResult } from './exchange.js';

export function query(x: Routed): StepResult {
  const parsed = parseQuery(x.search);
  if (parsed === null) return refusal(errors.BAD_REQUEST('Too many query parameters'));
  x.query = parsed;
  return undefined;
}
