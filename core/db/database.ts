// One interface over PostgreSQL (node-postgres pool) and embedded PGlite, so the executor,
// migrations and handlers never know which one they run on.

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

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
