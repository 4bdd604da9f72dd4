// nonstop's own table: one row per executed request id, holding the response it got. It is
// written in the same transaction as the handler's effects, which is what makes them happen
// exactly once however often a request is delivered.
import type { Migration } from './migrate.js';

export const NONSTOP_SCOPE = 'nonstop';

export const nonstopMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'requests',
    sql: [
      `CREATE TABLE nonstop_requests (
        id uuid PRIMARY KEY,
        route text NOT NULL,
        gateway_id text NOT NULL,
        received_at_ms bigint NOT NULL,
        executed_at timestamptz NOT NULL DEFAULT now(),
        status integer,
        headers json,
        body json
      )`,
      'CREATE INDEX nonstop_requests_executed_at ON nonstop_requests (executed_at)',
    ],
  },
  {
    // Ids derived from a client's Idempotency-Key: any gateway may replay them, but only for the
    // same request, which the fingerprint (hex SHA-256, core/fingerprint.ts) identifies.
    version: 2,
    name: 'idempotency-keys',
    sql: [
      'ALTER TABLE nonstop_requests ADD COLUMN idempotent boolean NOT NULL DEFAULT false',
      'ALTER TABLE nonstop_requests ADD COLUMN fingerprint text',
    ],
  },
  {
    // Answers of any type (`content_type` and its bytes, with `body` null) and Set-Cookie values.
    // Upstream calls (core/upstream/) commit their row before the call with `status` null and
    // `upstream_until_ms`, when the call is over at the latest: a row still without a status
    // after it was lost mid-call, and is answered as outcome-unknown, never called again.
    version: 3,
    name: 'content-cookies-upstream',
    sql: [
      'ALTER TABLE nonstop_requests ADD COLUMN content_type text',
      'ALTER TABLE nonstop_requests ADD COLUMN content bytea',
      'ALTER TABLE nonstop_requests ADD COLUMN cookies jsonb',
      'ALTER TABLE nonstop_requests ADD COLUMN upstream_until_ms bigint',
    ],
  },
];
