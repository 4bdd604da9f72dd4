// Versioned migrations, recorded per scope ("nonstop" for our own tables, "app:<name>" for the
// application's) in `nonstop_migrations`. Each migration runs in its own transaction that
// first takes an advisory lock, so two cores starting at once on one PostgreSQL apply each
// migration exactly once: the second waits, then sees it recorded.
import { errors } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { Database, Queryable } from './database.js';
import { schemaLockKey } from './postgres.js';

export interface Migration {
  /** Positive, strictly increasing within one scope. */
  readonly version: number;
  readonly name: string;
  /** Statements run in order, one per query (PGlite's extended protocol takes one at a time). */
  readonly sql: readonly string[];
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS nonstop_migrations (
  scope text NOT NULL,
  version integer NOT NULL,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, version)
)`;

/** Applies the migrations of `scope` not yet recorded; returns how many it applied. */
export async function migrate(
  db: Database,
  scope: string,
  migrations: readonly Migration[],
  logger: Logger,
): Promise<number> {
  checkOrder(scope, migrations);
  const lock = async (tx: Queryable) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [schemaLockKey(db.schema)]);
  };
  await db.transaction(async (tx) => {
    await lock(tx);
    await tx.query(CREATE_TABLE);
  });
  let applied = 0;
  for (const migration of migrations) {
    const ran = await db.transaction(async (tx) => {
      await lock(tx);
      const done = await tx.query('SELECT 1 FROM nonstop_migrations WHERE scope = $1 AND version = $2', [
        scope,
        migration.version,
      ]);
      if (done.rowCount > 0) return false;
      for (const statement of migration.sql) await tx.query(statement);
      await tx.query('INSERT INTO nonstop_migrations (scope, version, name) VALUES ($1, $2, $3)', [
        scope,
        migration.version,
        migration.name,
      ]);
      return true;
    });
    if (ran) {
      applied += 1;
      logger.info({ scope, version: migration.version, migration: migration.name }, 'migration applied');
    }
  }
  return applied;
}

function checkOrder(scope: string, migrations: readonly Migration[]): void {
  let previous = 0;
  for (const m of migrations) {
    if (!Number.isInteger(m.version) || m.version <= previous) {
      throw errors.APPLICATION_INVALID(
        `${scope}: migration "${m.name}" has version ${m.version}; versions must be positive integers in increasing order`,
      );
    }
    previous = m.version;
  }
}
