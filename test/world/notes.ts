// What the core's database holds of the notes the e2e suites create: the ledger they reconcile
// their clients' answers against (each keyed request's note written once, or not at all).
import type { WorldPostgres } from '../../world/postgres.js';

/** How many notes there are of each title LIKE `pattern` (`promote-%`), read through the core's socket. */
export async function countNotes(pg: WorldPostgres, pattern: string): Promise<Map<string, number>> {
  const client = await pg.connect();
  try {
    const { rows } = await client.query<{ title: string; n: number }>(
      'SELECT title, count(*)::int AS n FROM notes WHERE title LIKE $1 GROUP BY title',
      [pattern],
    );
    return new Map(rows.map((r) => [r.title, r.n]));
  } finally {
    await client.end();
  }
}
