// The row a request id claimed in `nonstop_requests`, read for a later delivery of that id and
// checked against it: a keyed id (a client's Idempotency-Key) answers the same request from any
// gateway and nothing else (422); any other id belongs to one gateway's request (409 otherwise).
import { errors } from '../lib/errors.js';
import type { Envelope } from '../lib/envelope.js';
import type { Queryable, Row } from './db/database.js';

export const STORED_COLUMNS = `route, gateway_id, idempotent, fingerprint, status, headers, body,
  content_type, content, cookies, upstream_until_ms`;

export async function readClaimed(
  q: Queryable,
  envelope: Envelope,
  fingerprint: string | null,
): Promise<Row> {
  const { rows } = await q.query(`SELECT ${STORED_COLUMNS} FROM nonstop_requests WHERE id = $1`, [
    envelope.id,
  ]);
  const row = rows[0];
  if (row === undefined) throw new Error(`request ${envelope.id} was claimed but its row is gone`);
  if (fingerprint !== null && row.idempotent === true) {
    if (row.route !== envelope.route || row.fingerprint !== fingerprint) {
      throw errors.IDEMPOTENCY_KEY_REUSED();
    }
    return row;
  }
  if (
    row.route !== envelope.route ||
    row.gateway_id !== envelope.gatewayId ||
    row.idempotent !== (fingerprint !== null)
  ) {
    throw errors.IDEMPOTENCY_CONFLICT();
  }
  return row;
}
