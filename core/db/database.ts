// One interface over PostgreSQL (node-postgres pool) and embedded PGlite, so the executor,
// migrations and handlers never know which one they run on.
import { errors } from '../../lib/errors.js';

/** A row as the database returned it: `unknown` until a handler or mapper checks it. */
export type Row = Readonly<Record<string, unknown>>;

export interface QueryResult {
  readonly rows: readonly Row[];
  /** Rows returned or affected. */
  readonly rowCount: number;
}

export interface Queryable {
  query(sql: string, params?: readonly unknown[]): Promise<QueryResult>;
}

export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** The schema nonstop's and the application's tables live in. */
  readonly schema: string;
  /**
   * Runs `fn` inside BEGIN … COMMIT on one connection; any throw rolls back and is rethrown.
   * A throw from a failed connection surfaces as the driver's error (see `isUnavailable`).
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The schema names the core config accepts; safe unquoted in a connection's startup options. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function checkSchemaName(schema: string): void {
  if (!SCHEMA_NAME.test(schema)) {
    throw errors.CONFIG_INVALID(`database schema ${JSON.stringify(schema)} must match ${SCHEMA_NAME.source}`);
  }
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
