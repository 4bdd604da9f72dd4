// A PostgreSQL connection lost in the middle of a transaction (the server killed, restarted, or
// the backend terminated) is a retryable failure of that one request, never the core's end:
// the transaction rejects as unavailable, nothing it did is kept, and the next one works.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { openPostgres } from '../../core/db/postgres.js';
import { isUnavailable } from '../../core/db/unavailable.js';
import { silentLogger } from '../../lib/log.js';
import { sql, useTestSchema } from '../helpers/pg.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

test('a backend terminated between two queries of a transaction: unavailable, rolled back, the pool goes on', async (t) => {
  const { url, schema } = await useTestSchema(t);
  const db = await openPostgres({ url, schema, poolSize: 1 }, silentLogger());
  t.after(() => db.close());
  await db.query('CREATE TABLE marks (n integer PRIMARY KEY)');
  let handled = 0;
  const failed = db.transaction(async (tx) => {
    await tx.query('INSERT INTO marks VALUES (1)');
    const { rows } = await tx.query('SELECT pg_backend_pid() AS pid');
    // The server ends this connection while no query of it is under way: the driver has only
    // an 'error' event to tell, which nothing but the transaction itself can hear.
    await sql('SELECT pg_terminate_backend($1)', [rows[0]!['pid']]);
    await sleep(300);
    handled++;
    await tx.query('INSERT INTO marks VALUES (2)');
  });
  await assert.rejects(failed, (err) => isUnavailable(err));
  assert.equal(handled, 1, 'the handler ran up to its next query');
  // The one pooled connection was destroyed, not returned broken: a new one serves.
  await db.transaction(async (tx) => {
    await tx.query('INSERT INTO marks VALUES (3)');
  });
  const { rows } = await db.query('SELECT n FROM marks ORDER BY n');
  assert.deepEqual(
    rows.map((r) => r['n']),
    [3],
    'nothing of the lost transaction was kept',
  );
});

test('a server whose Unix socket is gone (stopped, or restarting) is unavailable, not a failed request', async () => {
  const gone = new pg.Pool({
    connectionString: 'postgresql://nonstop-core@/nonstop?host=/nonexistent/run&port=5432',
  });
  try {
    const err = await gone.connect().then(
      () => assert.fail('connected to no server'),
      (e: unknown) => e,
    );
    assert.equal((err as { code?: unknown }).code, 'ENOENT');
    assert.ok(isUnavailable(err), 'no socket file: retry later');
  } finally {
    await gone.end();
  }
  const file = Object.assign(new Error("ENOENT: no such file or directory, open '/x'"), {
    code: 'ENOENT',
    syscall: 'open',
  });
  assert.ok(!isUnavailable(file), 'a missing file elsewhere is no database outage');
});
