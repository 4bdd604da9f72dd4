// PostgreSQL through a node-postgres pool. Every pooled connection starts with its
// `search_path` set to the configured schema, so tests can each use a schema of their own.
import pg from 'pg';
import type { Logger } from '../../lib/log.js';
import {
  checkSchemaName,
  quoteIdentifier,
  type Database,
  type Queryable,
  type QueryResult,
  type Row,
} from './database.js';
import { isUnavailable } from './unavailable.js';

export interface PostgresOptions {
  readonly url: string;
  readonly schema: string;
  readonly poolSize: number;
}

/** Same lock key the migrations take: creating a schema twice at once would fail. */
export function schemaLockKey(schema: string): string {
  return `nonstop:${schema}`;
}

export async function openPostgres(options: PostgresOptions, logger: Logger): Promise<Database> {
  checkSchemaName(options.schema);
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    // Fail fast when the server is away, so a request gets a retryable 503 instead of hanging.
    connectionTimeoutMillis: 5000,
    options: `-c search_path=${options.schema}`,
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', (err) => logger.warn({ err: err.message }, 'idle database connection failed'));

  const db = new PostgresDatabase(pool, options.schema);
  try {
    await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [schemaLockKey(options.schema)]);
      await tx.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(options.schema)}`);
    });
  } catch (err) {
    await pool.end();
    throw err;
  }
  return db;
}

class PostgresDatabase implements Database {
  readonly kind = 'postgres';

  constructor(
    private readonly pool: pg.Pool,
    readonly schema: string,
  ) {}

  async query(sql: string, params: readonly unknown[] = []): Promise<QueryResult> {
    return toResult(await this.pool.query(sql, [...params]));
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // The pool listens for a client's errors only while it is idle. A connection lost while the
    // client is checked out (the server killed or restarted between two queries of `fn`) would
    // otherwise be an unhandled 'error' event and end the process; here it marks the client
    // broken, and the next query (or COMMIT) rejects with a connection error, so the request
    // gets a retryable 503 and nothing is recorded.
    const onError = (err: Error) => {
      broken = err;
    };
    client.on('error', onError);
    const tx: Queryable = {
      query: async (sql, params = []) => toResult(await client.query(sql, [...params])),
    };
    try {
      await client.query('BEGIN');
      const result = await fn(tx);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      if (isUnavailable(err)) broken = err as Error;
      else {
        await client.query('ROLLBACK').catch((rollbackErr: Error) => {
          broken = rollbackErr;
        });
      }
      throw err;
    } finally {
      // A connection that failed mid-transaction is destroyed rather than returned to the pool.
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

function toResult(result: pg.QueryResult): QueryResult {
  const rows = result.rows as Row[];
  return { rows, rowCount: result.rowCount ?? rows.length };
}
