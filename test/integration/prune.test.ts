// Executed requests are forgotten after the retention, in batches, and only those.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { notesApplication } from '../../core/app/notes/index.js';
import { pruneRequests, schedulePruning } from '../../core/db/prune.js';
import { Executor } from '../../core/executor.js';
import { silentLogger } from '../../lib/log.js';
import { DATABASE_KINDS, openTestDatabase } from '../helpers/core.js';
import { makeEnvelope } from '../helpers/envelope.js';
import { notes } from '../helpers/execute.js';

const HOUR = 3600;

for (const kind of DATABASE_KINDS) {
  describe(`pruning executed requests on ${kind}`, () => {
    test('rows older than the retention go, in batches; newer ones and the effects stay', async (t) => {
      const db = await openTestDatabase(t, kind);
      const executor = new Executor(db, notesApplication, silentLogger());
      const recent = makeEnvelope(notes.create({ title: 'recent' }));
      await executor.execute(recent);
      // 2,500 old rows: more than two batches.
      await db.query(
        `INSERT INTO nonstop_requests (id, route, gateway_id, received_at_ms, executed_at, status)
         SELECT gen_random_uuid(), 'notes.create', 'gw1', 0, now() - interval '2 hours', 201
         FROM generate_series(1, 2500)`,
      );
      assert.equal(await pruneRequests(db, HOUR), 2500);
      const { rows } = await db.query('SELECT id FROM nonstop_requests');
      assert.deepEqual(
        rows.map((r) => r.id),
        [recent.id],
      );
      assert.equal(await pruneRequests(db, HOUR), 0);
      // A redelivery within the retention is still a replay.
      assert.equal((await executor.execute(recent)).replayed, true);
      const { rows: kept } = await db.query('SELECT count(*)::int AS n FROM notes');
      assert.equal(kept[0]?.n, 1);
    });

    test('the schedule prunes at once and stops cleanly', async (t) => {
      const db = await openTestDatabase(t, kind);
      await db.query(
        `INSERT INTO nonstop_requests (id, route, gateway_id, received_at_ms, executed_at, status)
         VALUES (gen_random_uuid(), 'notes.create', 'gw1', 0, now() - interval '3 hours', 201)`,
      );
      const pruning = schedulePruning(db, HOUR, silentLogger(), 60_000);
      await pruning.stop();
      const { rows } = await db.query('SELECT count(*)::int AS n FROM nonstop_requests');
      assert.equal(rows[0]?.n, 0);
    });
  });
}
