// Migrations on PostgreSQL: two cores starting at once apply each migration exactly once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { notesApplication } from '../../core/app/notes/index.js';
import { migrate } from '../../core/db/migrate.js';
import { openPostgres } from '../../core/db/postgres.js';
import { NONSTOP_SCOPE, nonstopMigrations } from '../../core/db/requests.js';
import { isNonstopError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { openTestDatabase } from '../helpers/core.js';
import { sql, useTestSchema } from '../helpers/pg.js';

test('two cores opening and migrating one new schema at once both succeed, each migration once', async (t) => {
  const { url, schema } = await useTestSchema(t, { create: false });
  const logger = silentLogger();
  const open = async () => {
    const db = await openPostgres({ url, schema, poolSize: 2 }, logger);
    t.after(() => db.close());
    const own = await migrate(db, NONSTOP_SCOPE, nonstopMigrations, logger);
    const app = await migrate(db, 'app:notes', notesApplication.migrations, logger);
    return own + app;
  };
  const applied = await Promise.all([open(), open(), open()]);
  // Each scope migrates under its own lock, so different cores may apply different scopes;
  // what matters is that every migration was applied exactly once in all.
  const total = applied.reduce((sum, n) => sum + n, 0);
  assert.equal(total, nonstopMigrations.length + notesApplication.migrations.length);
  const { rows } = await sql(
    `SELECT scope, version FROM ${schema}.nonstop_migrations ORDER BY scope, version`,
  );
  assert.deepEqual(rows, [
    { scope: 'app:notes', version: 1 },
    { scope: 'nonstop', version: 1 },
    { scope: 'nonstop', version: 2 },
    { scope: 'nonstop', version: 3 },
  ]);
});

test('migrating again applies nothing; versions out of order are refused', async (t) => {
  const db = await openTestDatabase(t, 'postgres');
  const logger = silentLogger();
  assert.equal(await migrate(db, 'app:notes', notesApplication.migrations, logger), 0);
  const unordered = [
    { version: 2, name: 'b', sql: [] },
    { version: 1, name: 'a', sql: [] },
  ];
  await assert.rejects(
    migrate(db, 'app:x', unordered, logger),
    (err) =>
      isNonstopError(err) && /versions must be positive integers in increasing order/.test(err.message),
  );
});
