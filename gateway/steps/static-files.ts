// Files the gateway serves itself (gateway/static-files.ts), answered here without queueing:
// after the HTTP version, health, rate and limit checks, before routing.
import type { StaticFiles } from '../static-files.js';
import { ANSWERED, type Exchange, type Step } from './exchange.js';

export function staticFiles(files: StaticFiles | undefined): Step<Exchange> {
  return async ({ req, res, path }) => {
    if (files === undefined || !files.handles(path)) return undefined;
    await files.serve(req, res);
    return ANSWERED;
  };
}
