// Turns one HTTPS request from a broker into one answer: authenticate the client cert's unit,
// check the execute request, run it through the executor, and log the outcome (never bodies).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { RouteDefinition } from '../config/schemas/routes.js';
import { errors, isNonstopError, type NonstopError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Database } from './db/database.js';
import type { Executor } from './executor.js';
import { FIXED_ROUTES, type CoreMetrics } from './metrics.js';
import { readBody, sendError, sendJson } from './http.js';
import {
  checkExecuteHeaders,
  EXECUTE_PATH,
  HEALTH_PATH,
  MAX_EXECUTE_BYTES,
  parseBudget,
  parseExecuteBody,
  REPLAYED_HEADER,
  withBudget,
} from '../lib/core-protocol.js';

export interface DispatchOptions {
  readonly brokerUnit: string;
  readonly routes: ReadonlyMap<string, RouteDefinition>;
  readonly executor: Executor;
  readonly db: Database;
  readonly logger: Logger;
  /** Counts every answer (core/metrics.ts); none: nothing is counted. */
  readonly metrics?: CoreMetrics;
}

/** What the request log line says about an execute request, filled in as it is learnt. */
interface Outcome {
  requestId?: string;
  route?: string;
  replayed?: boolean;
  /** The application's status inside the 200 answer. */
  appStatus?: number;
}

export function createDispatcher(options: DispatchOptions) {
  const { logger } = options;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    const outcome: Outcome = {};
    const path = (req.url ?? '/').split('?')[0];
    const routeLabel = () =>
      outcome.route ??
      (path === HEALTH_PATH && req.method === 'GET' ? FIXED_ROUTES.health : FIXED_ROUTES.refused);
    try {
      const broker = brokerName(req.socket as TLSSocket, options.brokerUnit);
      if (path === HEALTH_PATH && req.method === 'GET') await health(res, options.db);
      else if (path === EXECUTE_PATH && req.method === 'POST') await execute(req, res, options, outcome);
      else if (path === HEALTH_PATH || path === EXECUTE_PATH) throw errors.METHOD_NOT_ALLOWED();
      else throw errors.NOT_FOUND(`no such endpoint; the core serves POST ${EXECUTE_PATH}`);
      const line = { ...outcome, broker, status: res.statusCode, durationMs: elapsed(started) };
      options.metrics?.count(routeLabel(), outcome.appStatus ?? res.statusCode, seconds(started));
      // Health probes come often and say little; executions are the log's substance.
      if (outcome.requestId === undefined) logger.debug(line, 'health');
      else logger.info(line, 'executed');
    } catch (err) {
      const failure = asNonstopError(err);
      if (!res.headersSent) sendError(res, failure);
      else res.destroy();
      // Unexpected errors (bugs) keep their message and stack in the log; never a request body.
      const unexpected = isNonstopError(err) ? undefined : describe(err);
      if (options.metrics !== undefined) {
        options.metrics.count(routeLabel(), failure.status ?? 500, seconds(started));
        if (failure.code === errors.DATABASE_UNAVAILABLE.code)
          options.metrics.databaseError(outcome.route === undefined ? 'health' : 'execute');
      }
      logger.warn(
        { ...outcome, status: failure.status, code: failure.code, durationMs: elapsed(started), unexpected },
        failure.message,
      );
      if (failure.status === 413) req.resume();
    }
  };
}

async function execute(
  req: IncomingMessage,
  res: ServerResponse,
  options: DispatchOptions,
  outcome: Outcome,
): Promise<void> {
  const key = checkExecuteHeaders(req.headers);
  const budget = parseBudget(req.headers);
  const arrived = Date.now();
  const raw = await readBody(req, MAX_EXECUTE_BYTES);
  const envelope = withBudget(parseExecuteBody(raw, key, options.routes), budget, arrived);
  outcome.requestId = envelope.id;
  outcome.route = envelope.route;
  const { replayed, response } = await options.executor.execute(envelope);
  outcome.replayed = replayed;
  outcome.appStatus = response.status;
  sendJson(res, 200, response, replayed ? { [REPLAYED_HEADER]: '1' } : {});
}

async function health(res: ServerResponse, db: Database): Promise<void> {
  try {
    await db.query('SELECT 1');
  } catch (err) {
    throw errors.DATABASE_UNAVAILABLE(undefined, undefined, { cause: err });
  }
  sendJson(res, 200, { ok: true });
}

/** The CN of a broker's client cert; throws 403 when the cert is not a broker's. */
function brokerName(socket: TLSSocket, brokerUnit: string): string {
  const cert = socket.authorized ? socket.getPeerCertificate() : undefined;
  const subject = cert?.subject as { OU?: string | string[]; CN?: string | string[] } | undefined;
  const units = [subject?.OU ?? []].flat();
  if (!units.includes(brokerUnit)) {
    throw errors.UNAUTHENTICATED(`the client certificate's unit is not "${brokerUnit}"`);
  }
  return [subject?.CN ?? ''].flat().join(',');
}

function asNonstopError(err: unknown): NonstopError {
  return isNonstopError(err) && err.status !== undefined
    ? err
    : errors.HANDLER_FAILED(undefined, undefined, { cause: err });
}

function describe(err: unknown): { message: string; stack?: string } {
  return err instanceof Error ? { message: err.message, stack: err.stack } : { message: String(err) };
}

function seconds(started: number): number {
  return (performance.now() - started) / 1000;
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
