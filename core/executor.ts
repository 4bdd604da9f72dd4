// Exactly-once execution. One transaction per request: claim the request id in
// `nonstop_requests`, run the handler, store its response, commit. A second delivery of the id
// finds it claimed (its INSERT waits while the first is still running) and gets the stored
// response instead; nothing runs twice. A handler that throws leaves no trace.
// An id derived from a client's Idempotency-Key (`envelope.idempotent`) is replayed to any
// gateway, but only for the same request (same route and fingerprint); anything else is 422.
// A route served by an upstream application is called at most once (core/upstream/at-most-once.ts).
import { errors, isNonstopError } from '../lib/errors.js';
import type { Envelope } from '../lib/envelope.js';
import type { Logger } from '../lib/log.js';
import type { Application, HandlerContext } from './application.js';
import type { Database, Queryable } from './db/database.js';
import { isUnavailable } from './db/unavailable.js';
import { requestFingerprint } from './fingerprint.js';
import {
  errorAnswer,
  RESPONSE_SET,
  responseColumns,
  storedResponseFromRow,
  toStoredResponse,
  type StoredResponse,
} from './response.js';
import { readClaimed } from './stored-request.js';
import { executeUpstream } from './upstream/at-most-once.js';
import { upstreamFor, type UpstreamTarget } from './upstream/targets.js';

export type { StoredResponse };

export interface Execution {
  /** True when the id had been executed before and this is its stored response. */
  readonly replayed: boolean;
  readonly response: StoredResponse;
}

/** Thrown inside the transaction to roll it back when the id was already executed. */
class AlreadyExecuted extends Error {
  constructor(readonly response: StoredResponse) {
    super('request already executed');
  }
}

export interface ExecutorOptions {
  /** Applications reached over HTTP; a route one of them matches never runs a handler. */
  readonly upstreams?: readonly UpstreamTarget[];
  readonly now?: () => number;
}

export class Executor {
  private readonly upstreams: readonly UpstreamTarget[];
  private readonly now: () => number;

  constructor(
    private readonly db: Database,
    private readonly app: Application,
    private readonly logger: Logger,
    options: ExecutorOptions = {},
  ) {
    this.upstreams = options.upstreams ?? [];
    this.now = options.now ?? Date.now;
  }

  /**
   * Throws a NonstopError: DEADLINE_EXCEEDED (nothing ran, or it ran out of time and was rolled
   * back), ROUTE_UNKNOWN, IDEMPOTENCY_CONFLICT
   * (the id belongs to another route or gateway), IDEMPOTENCY_KEY_REUSED (a keyed id whose
   * stored request differs), DATABASE_UNAVAILABLE (retryable, nothing
   * recorded) or HANDLER_FAILED (rolled back, nothing recorded). An upstream's failures are
   * answers (stored 502/504s), not throws.
   */
  async execute(envelope: Envelope): Promise<Execution> {
    if (this.now() >= envelope.deadline) throw errors.DEADLINE_EXCEEDED();
    const upstream = upstreamFor(this.upstreams, envelope.route);
    if (upstream !== undefined) return this.callUpstream(upstream, envelope);
    if (!Object.hasOwn(this.app.handlers, envelope.route)) {
      throw errors.ROUTE_UNKNOWN(`route "${envelope.route}" has no handler`);
    }
    try {
      const response = await this.db.transaction((tx) => this.run(tx, envelope));
      return { replayed: false, response };
    } catch (err) {
      if (err instanceof AlreadyExecuted) return { replayed: true, response: err.response };
      if (isNonstopError(err)) throw err;
      if (isQueryCanceled(err)) throw errors.DEADLINE_EXCEEDED(undefined, undefined, { cause: err });
      if (isUnavailable(err)) {
        throw errors.DATABASE_UNAVAILABLE(undefined, undefined, { cause: err });
      }
      this.logger.error(
        { requestId: envelope.id, route: envelope.route, err: describe(err) },
        'handler failed; rolled back',
      );
      throw errors.HANDLER_FAILED(undefined, undefined, { cause: err });
    }
  }

  private async callUpstream(target: UpstreamTarget, envelope: Envelope): Promise<Execution> {
    const fingerprint = envelope.idempotent === true ? requestFingerprint(envelope) : null;
    try {
      return await executeUpstream(this.db, target, envelope, fingerprint, this.now, this.logger);
    } catch (err) {
      if (isNonstopError(err)) throw err;
      if (isUnavailable(err)) throw errors.DATABASE_UNAVAILABLE(undefined, undefined, { cause: err });
      this.logger.error(
        { requestId: envelope.id, route: envelope.route, err: describe(err) },
        'upstream execution failed',
      );
      throw errors.HANDLER_FAILED(undefined, undefined, { cause: err });
    }
  }

  private async run(tx: Queryable, envelope: Envelope): Promise<StoredResponse> {
    // Work past the deadline is wasted (the gateway has answered 504): PostgreSQL cancels it.
    const remaining = Math.max(1, envelope.deadline - this.now());
    await tx.query("SELECT set_config('statement_timeout', $1, true)", [String(remaining)]);
    const idempotent = envelope.idempotent === true;
    const fingerprint = idempotent ? requestFingerprint(envelope) : null;
    const claimed = await tx.query(
      `INSERT INTO nonstop_requests (id, route, gateway_id, received_at_ms, idempotent, fingerprint)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING id`,
      [envelope.id, envelope.route, envelope.gatewayId, envelope.receivedAt, idempotent, fingerprint],
    );
    if (claimed.rowCount === 0) throw new AlreadyExecuted(await this.stored(tx, envelope, fingerprint));

    const handler = this.app.handlers[envelope.route]!;
    const response = toStoredResponse(await handler(context(tx, envelope)));
    await tx.query(`UPDATE nonstop_requests SET ${RESPONSE_SET} WHERE id = $1`, [
      envelope.id,
      ...responseColumns(response),
    ]);
    return response;
  }

  private async stored(
    tx: Queryable,
    envelope: Envelope,
    fingerprint: string | null,
  ): Promise<StoredResponse> {
    const row = await readClaimed(tx, envelope, fingerprint);
    // A row without an answer is an upstream call's whose answer was lost (the route has been
    // moved to a handler since): the application's outcome is unknown, and nothing runs.
    if (row.status === null) return errorAnswer(errors.UPSTREAM_OUTCOME_UNKNOWN());
    return storedResponseFromRow(row);
  }
}

function context(tx: Queryable, envelope: Envelope): HandlerContext {
  return {
    tx,
    route: envelope.route,
    params: envelope.params,
    query: envelope.query,
    body: envelope.body,
    headers: envelope.headers,
    requestId: envelope.id,
    clientIp: envelope.clientIp,
    gatewayId: envelope.gatewayId,
    receivedAt: envelope.receivedAt,
  };
}

/** SQLSTATE 57014: the statement timeout set from the deadline fired. */
function isQueryCanceled(err: unknown): boolean {
  return err instanceof Error && (err as { code?: unknown }).code === '57014';
}

/** Error message and stack for the log; never the request body. */
function describe(err: unknown): { message: string; stack?: string } {
  return err instanceof Error ? { message: err.message, stack: err.stack } : { message: String(err) };
}
