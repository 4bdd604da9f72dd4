// Forgets executed requests once they are older than the retention: nonstop_requests would
// otherwise grow forever. A redelivery can only come within a request's deadline (at most
// 10 minutes, gateway config), so the retention's floor of an hour never lets a redelivered
// request run twice; a client's Idempotency-Key is honoured for the retention, then forgotten.
import type { Logger } from '../../lib/log.js';
import type { Queryable } from './database.js';

/** Rows deleted per statement, so a prune never holds many row locks or a long transaction. */
const BATCH = 1000;

/** Deletes requests executed more than `retentionSeconds` ago; returns how many. */
export async function pruneRequests(db: Queryable, retentionSeconds: number): Promise<number> {
  let total = 0;
  for (;;) {
    const { rowCount } = await db.query(
      `DELETE FROM nonstop_requests WHERE id IN (
         SELECT id FROM nonstop_requests
         WHERE executed_at < now() - make_interval(secs => $1)
         LIMIT $2)`,
      [retentionSeconds, BATCH],
    );
    total += rowCount;
    if (rowCount < BATCH) return total;
  }
}

/** Prunes now and then every `intervalMs` until stopped; failures are logged and retried next time. */
export function schedulePruning(
  db: Queryable,
  retentionSeconds: number,
  logger: Logger,
  intervalMs = Math.min(600_000, Math.max(10_000, (retentionSeconds * 1000) / 10)),
): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  const run = () => {
    running = pruneRequests(db, retentionSeconds).then(
      (n) => {
        if (n > 0)
          logger.info({ pruned: n, retentionSeconds }, 'forgot executed requests past the retention');
      },
      (err: unknown) =>
        logger.warn(
          { err: err instanceof Error ? err.message : String(err) },
          'pruning executed requests failed',
        ),
    );
  };
  run();
  const timer = setInterval(run, intervalMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
