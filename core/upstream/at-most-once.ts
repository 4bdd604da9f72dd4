// An upstream call happens at most once per request id. The application's effect is in its
// own database, outside any transaction of the core's, so the core commits a row saying the
// call started (status null, `upstream_until_ms`: when the call is over at the latest), calls,
// then stores the answer. A delivery that finds the row waits for the answer until that time;
// a row still without an answer after it was lost mid-call (the core died, the database was
// down when the answer came): it gets UPSTREAM_OUTCOME_UNKNOWN, stored, and no second call.
import { errors } from '../../lib/errors.js';
import type { Envelope } from '../../lib/envelope.js';
import type { Logger } from '../../lib/log.js';
import type { Database } from '../db/database.js';
import {
  RESPONSE_SET,
  responseColumns,
  storedResponseFromRow,
  errorAnswer,
  type StoredResponse,
} from '../response.js';
import { readClaimed } from '../stored-request.js';
import { callUpstream } from './call.js';
import type { UpstreamTarget } from './targets.js';

/** Beyond the call's own timeout, how long a started row may still get its answer stored. */
export const LEASE_GRACE_MS = 2000;
const POLL_MS = 25;

export interface UpstreamExecution {
  readonly replayed: boolean;
  readonly response: StoredResponse;
}

export async function executeUpstream(
  db: Database,
  target: UpstreamTarget,
  envelope: Envelope,
  fingerprint: string | null,
  now: () => number,
  logger: Logger,
): Promise<UpstreamExecution> {
  const timeoutMs = Math.max(1, Math.min(target.timeoutMs, envelope.deadline - now()));
  const until = now() + timeoutMs + LEASE_GRACE_MS;
  const claimed = await db.query(
    `INSERT INTO nonstop_requests
       (id, route, gateway_id, received_at_ms, idempotent, fingerprint, upstream_until_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING RETURNING id`,
    [
      envelope.id,
      envelope.route,
      envelope.gatewayId,
      envelope.receivedAt,
      fingerprint !== null,
      fingerprint,
      until,
    ],
  );
  if (claimed.rowCount === 0) return awaitAnswer(db, envelope, fingerprint, now);

  const log = { requestId: envelope.id, route: envelope.route, upstream: target.label };
  const started = now();
  const outcome = await callUpstream(target, envelope, timeoutMs);
  const fields = { ...log, status: outcome.response.status, durationMs: now() - started };
  if (outcome.failure === undefined) logger.debug(fields, 'upstream answered');
  else logger.warn({ ...fields, code: outcome.failure }, 'upstream call failed; answer stored');
  try {
    const stored = await db.query(
      `UPDATE nonstop_requests SET ${RESPONSE_SET} WHERE id = $1 AND status IS NULL`,
      [envelope.id, ...responseColumns(outcome.response)],
    );
    // Declared lost already (the call outlived its row's time): every delivery gets that answer.
    if (stored.rowCount === 0) return awaitAnswer(db, envelope, fingerprint, now);
  } catch (err) {
    // This delivery still answers with what the application said; later ones get outcome-unknown.
    logger.error(
      { ...log, err: err instanceof Error ? err.message : String(err) },
      'upstream answer could not be stored; a redelivery will be answered outcome-unknown',
    );
  }
  return { replayed: false, response: outcome.response };
}

/** A delivery of an id whose call another delivery started: its answer, once there. */
async function awaitAnswer(
  db: Database,
  envelope: Envelope,
  fingerprint: string | null,
  now: () => number,
): Promise<UpstreamExecution> {
  for (;;) {
    const row = await readClaimed(db, envelope, fingerprint);
    if (row.status !== null && row.status !== undefined) {
      return { replayed: true, response: storedResponseFromRow(row) };
    }
    const until = row.upstream_until_ms === null ? 0 : Number(row.upstream_until_ms);
    if (now() >= until) {
      const response = errorAnswer(errors.UPSTREAM_OUTCOME_UNKNOWN());
      const written = await db.query(
        `UPDATE nonstop_requests SET ${RESPONSE_SET} WHERE id = $1 AND status IS NULL`,
        [envelope.id, ...responseColumns(response)],
      );
      if (written.rowCount > 0) return { replayed: false, response };
      continue;
    }
    if (now() >= envelope.deadline)
      throw errors.DEADLINE_EXCEEDED('the request is still being answered by the application');
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS, until - now())));
  }
}
