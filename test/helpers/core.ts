// Worlds for core tests: a database of either kind with the migrations applied, a config for a
// core on port 0, and the example route table.
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { validateConfig } from '../../config/load.js';
import { loadRoutes } from '../../config/routes.js';
import type { CoreConfig } from '../../config/schemas/core.js';
import type { RoutesConfig } from '../../config/schemas/routes.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import type { Application } from '../../core/application.js';
import type { Database } from '../../core/db/database.js';
import { migrate } from '../../core/db/migrate.js';
import { openPglite } from '../../core/db/pglite.js';
import { openPostgres } from '../../core/db/postgres.js';
import { NONSTOP_SCOPE, nonstopMigrations } from '../../core/db/requests.js';
import { notesApplication } from '../../core/app/notes/index.js';
import { startCore, type RunningCore } from '../../core/server.js';
import { captureLogger } from './log.js';
import { useTestSchema } from './pg.js';
import type { TestPki } from './pki.js';

export type DatabaseKind = Database['kind'];
export const DATABASE_KINDS: readonly DatabaseKind[] = ['postgres', 'pglite'];

/** The sample notes route table (compiled from dist/test/helpers, so three levels up). */
export const EXAMPLE_ROUTES_FILE = fileURLToPath(
  new URL('../../../config/examples/routes.json', import.meta.url),
);

export function exampleRoutes(): RoutesConfig {
  return loadRoutes(EXAMPLE_ROUTES_FILE);
}

/** The `database` part of a core config: a fresh PostgreSQL schema, or PGlite in memory. */
export async function testDatabaseConfig(
  t: TestContext,
  kind: DatabaseKind,
): Promise<Record<string, unknown>> {
  if (kind === 'pglite') return {};
  const { url, schema } = await useTestSchema(t);
  return { url, schema, poolSize: 12 };
}

/** An open database with nonstop's and `app`'s migrations applied, closed after the test. */
export async function openTestDatabase(
  t: TestContext,
  kind: DatabaseKind,
  app: Application = notesApplication,
): Promise<Database> {
  const logger = silentLogger();
  let db: Database;
  if (kind === 'pglite') db = await openPglite({ schema: 'public' });
  else {
    const { url, schema } = await useTestSchema(t);
    db = await openPostgres({ url, schema, poolSize: 12 }, logger);
  }
  t.after(() => db.close());
  await migrate(db, NONSTOP_SCOPE, nonstopMigrations, logger);
  await migrate(db, `app:${app.name}`, app.migrations, logger);
  return db;
}

/** A validated core config (defaults filled in) listening on 127.0.0.1, port 0. */
export function testCoreConfig(
  pki: TestPki,
  database: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): CoreConfig {
  return validateConfig('core', 'test-core.json', {
    kind: 'core',
    routes: EXAMPLE_ROUTES_FILE,
    logLevel: 'silent',
    listen: { host: '127.0.0.1', port: 0 },
    tls: { ca: pki.ca.cert, cert: pki.core.cert, key: pki.core.key },
    database,
    ...extra,
  });
}

/** Starts a core for the test and closes it afterwards. */
export async function startTestCore(
  t: TestContext,
  pki: TestPki,
  kind: DatabaseKind,
  options: { application?: Application; logger?: Logger } = {},
): Promise<RunningCore> {
  const config = testCoreConfig(pki, await testDatabaseConfig(t, kind));
  const { application, logger = silentLogger() } = options;
  const core = await startCore(config, logger, application === undefined ? {} : { application });
  t.after(() => core.close());
  return core;
}

/**
 * A core on a fresh PostgreSQL schema whose log is kept, to count the execute requests it
 * answered (`executions`): what an attack test asserts never reached it.
 */
export async function startCountingCore(
  t: TestContext,
  pki: TestPki,
): Promise<{ core: RunningCore; schema: string; executions: () => number }> {
  const { url, schema } = await useTestSchema(t);
  const log = captureLogger('debug');
  const core = await startCore(testCoreConfig(pki, { url, schema }), log.logger);
  t.after(() => core.close());
  return {
    core,
    schema,
    executions: () => log.lines().filter((l) => 'durationMs' in l && l.msg !== 'health').length,
  };
}

/** The notes application, with notes.create holding its transaction open for `ms` after its work. */
export function slowNotes(ms: number): Application {
  const create = notesApplication.handlers['notes.create']!;
  return {
    ...notesApplication,
    handlers: {
      ...notesApplication.handlers,
      'notes.create': async (ctx) => {
        const answer = await create(ctx);
        await new Promise((r) => setTimeout(r, ms));
        return answer;
      },
    },
  };
}
