// PGlite in a data directory: state, including executed request ids, survives a restart.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { notesApplication } from '../../core/app/notes/index.js';
import { migrate } from '../../core/db/migrate.js';
import { openPglite } from '../../core/db/pglite.js';
import { NONSTOP_SCOPE, nonstopMigrations } from '../../core/db/requests.js';
import { Executor } from '../../core/executor.js';
import { silentLogger } from '../../lib/log.js';
import { makeEnvelope } from '../helpers/envelope.js';
import { notes } from '../helpers/execute.js';

test('a PGlite data directory keeps notes and replays after a restart', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'nonstop-pglite-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const logger = silentLogger();
  const envelope = makeEnvelope(notes.create({ title: 'durable' }));

  const open = async () => {
    const db = await openPglite({ schema: 'nonstop', dataDir });
    const applied =
      (await migrate(db, NONSTOP_SCOPE, nonstopMigrations, logger)) +
      (await migrate(db, 'app:notes', notesApplication.migrations, logger));
    return { db, applied, executor: new Executor(db, notesApplication, logger) };
  };

  const first = await open();
  assert.equal(first.applied, nonstopMigrations.length + notesApplication.migrations.length);
  const executed = await first.executor.execute(envelope);
  await first.db.close();

  const second = await open();
  t.after(() => second.db.close());
  assert.equal(second.applied, 0);
  const replayed = await second.executor.execute(envelope);
  assert.equal(replayed.replayed, true);
  assert.deepEqual(replayed.response, executed.response);
});
