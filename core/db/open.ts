// Picks the database a core config asks for: PostgreSQL when a URL is set, else PGlite.
import type { CoreConfig } from '../../config/schemas/core.js';
import type { Logger } from '../../lib/log.js';
import type { Database } from './database.js';
import { openPglite } from './pglite.js';
import { openPostgres } from './postgres.js';

export function openDatabase(config: CoreConfig['database'], logger: Logger): Promise<Database> {
  if (config.url !== undefined) {
    return openPostgres({ url: config.url, schema: config.schema, poolSize: config.poolSize }, logger);
  }
  return openPglite({ schema: config.schema, dataDir: config.dataDir });
}
