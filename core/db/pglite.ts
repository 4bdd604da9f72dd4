// Embedded PGlite: PostgreSQL compiled to WebAssembly, in memory or in a data directory.
// One connection, so PGlite itself runs transactions one after another.
import { PGlite, type Results } from '@electric-sql/pglite';
import {
  checkSchemaName,
  quoteIdentifier,
  type Database,
  type Queryable,
  type QueryResult,
  type Row,
} from './database.js';

export interface PgliteOptions {
  readonly schema: string;
  /** Omitted: in memory, nothing survives a restart. */
  readonly dataDir?: string;
}

export async function openPglite(options: PgliteOptions): Promise<Database> {
  checkSchemaName(options.schema);
  const pglite = options.dataDir === undefined ? await PGlite.create() : await PGlite.create(options.dataDir);
  try {
    const schema = quoteIdentifier(options.schema);
    // A session setting on PGlite's only connection holds for every later query.
    await pglite.exec(`CREATE SCHEMA IF NOT EXISTS ${schema}; SET search_path TO ${schema}`);
  } catch (err) {
    await pglite.close();
    throw err;
  }
  return new PgliteDatabase(pglite, options.schema);
}

class PgliteDatabase implements Database {
  readonly kind = 'pglite';

  constructor(
    private readonly pglite: PGlite,
    readonly schema: string,
  ) {}

  async query(sql: string, params: readonly unknown[] = []): Promise<QueryResult> {
    return toResult(await this.pglite.query(sql, [...params]));
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.pglite.transaction((tx) =>
      fn({ query: async (sql, params = []) => toResult(await tx.query(sql, [...params])) }),
    );
  }

  async close(): Promise<void> {
    if (!this.pglite.closed) await this.pglite.close();
  }
}

function toResult(result: Results<unknown>): QueryResult {
  const rows = result.rows as Row[];
  return { rows, rowCount: Math.max(rows.length, result.affectedRows ?? 0) };
}
