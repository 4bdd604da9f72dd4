// The broker↔core protocol, one module for both sides. The execute request a broker sends the
// core, checked down to the envelope:
//   POST /v1/execute, content-type: application/json, idempotency-key: <envelope id>,
//   x-nonstop-budget-ms: <how long the request has left, in ms>, body = the Envelope
//   (lib/envelope.ts).
// The budget is relative, as gRPC's grpc-timeout is: the envelope's deadline is in the queue's
// clock (lib/queue-clock.ts), which the core's need not agree with, so the core counts the
// budget from when the request reached it.
// Everything here is a 400 (or 404 for a route not in the table) when wrong.
// Its answer (200): the application's response, { status, headers, body, content?, cookies? }
// (core/response.ts), with x-nonstop-replayed: 1 when it was stored before. The broker reads
// it with `parseCoreAnswer`, the one parser of it.
import type { IncomingHttpHeaders } from 'node:http';
import { replyTimeoutSchema } from '../config/schemas/common.js';
import type { RouteDefinition } from '../config/schemas/routes.js';
import { idMatchesKind, parseEnvelope, parseReply, type Envelope, type Reply } from './envelope.js';
import { errors } from './errors.js';

export const EXECUTE_PATH = '/v1/execute';
export const HEALTH_PATH = '/healthz';
export const REPLAYED_HEADER = 'x-nonstop-replayed';
export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const BUDGET_HEADER = 'x-nonstop-budget-ms';
/** The longest budget: the longest reply deadline a gateway may set. */
export const MAX_BUDGET_MS: number = replyTimeoutSchema.maximum;
/** Largest execute request body the core reads. */
export const MAX_EXECUTE_BYTES = 1024 * 1024;

/**
 * The request's budget in ms from its header: undefined when there is none (a broker of an
 * earlier version; the envelope's deadline stands), a 400 when it is not a whole number of ms
 * from 1 to MAX_BUDGET_MS.
 */
export function parseBudget(headers: IncomingHttpHeaders): number | undefined {
  const raw = headers[BUDGET_HEADER];
  if (raw === undefined) return undefined;
  const budget = typeof raw === 'string' && /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
  if (!(budget >= 1 && budget <= MAX_BUDGET_MS))
    throw errors.BAD_REQUEST(
      `the ${BUDGET_HEADER} header must be a whole number of ms from 1 to ${MAX_BUDGET_MS}`,
    );
  return budget;
}

/**
 * The envelope with its deadline in the core's clock: `budgetMs` from `nowMs`, never more than
 * the window the gateway gave it (deadline − receivedAt).
 */
export function withBudget(envelope: Envelope, budgetMs: number | undefined, nowMs: number): Envelope {
  if (budgetMs === undefined) return envelope;
  const window = Math.max(0, envelope.deadline - envelope.receivedAt);
  return { ...envelope, deadline: nowMs + Math.min(budgetMs, window) };
}

/** Checks the headers before the body is read. */
export function checkExecuteHeaders(headers: IncomingHttpHeaders): string {
  const type = (headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw errors.BAD_REQUEST('an execute request must have content-type application/json');
  }
  const key = headers[IDEMPOTENCY_HEADER];
  if (typeof key !== 'string' || key === '') {
    throw errors.BAD_REQUEST(`an execute request needs an ${IDEMPOTENCY_HEADER} header`);
  }
  return key;
}

export function parseExecuteBody(
  raw: Buffer,
  idempotencyKey: string,
  routes: ReadonlyMap<string, RouteDefinition>,
): Envelope {
  let data: unknown;
  try {
    data = JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw errors.MALFORMED_JSON('the execute request body is not valid JSON');
  }
  const parsed = parseEnvelope(data);
  if (!parsed.ok) throw errors.BAD_REQUEST(`the envelope is invalid: ${parsed.error}`);
  const envelope = parsed.value;
  if (envelope.id !== idempotencyKey) {
    throw errors.BAD_REQUEST(`the ${IDEMPOTENCY_HEADER} header must equal the envelope id`);
  }
  if (!idMatchesKind(envelope)) {
    throw errors.BAD_REQUEST('the envelope id must be a version 8 UUID exactly when "idempotent" is true');
  }
  const route = routes.get(envelope.route);
  if (route === undefined) throw errors.ROUTE_UNKNOWN(`route "${envelope.route}" is not in the route table`);
  if (route.method !== envelope.method) {
    throw errors.BAD_REQUEST(
      `route "${route.name}" is ${route.method}, the envelope says ${envelope.method}`,
    );
  }
  return envelope;
}

/** The application's response as the broker carries it: a Reply without its id and flag. */
export type CoreAnswer = Pick<Reply, 'status' | 'headers' | 'body' | 'content' | 'cookies'>;

/**
 * Checks a core's 200 answer for `id` as the Reply it becomes (status, header names and sizes,
 * content type and base64, cookie count and bytes: lib/envelope.ts's reply schema).
 */
export function parseCoreAnswer(
  data: unknown,
  id: string,
): { ok: true; value: CoreAnswer } | { ok: false; error: string } {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { ok: false, error: 'the answer is not an object' };
  }
  if ('id' in data || 'replayed' in data) return { ok: false, error: 'the answer has reply-only fields' };
  const parsed = parseReply({ ...data, id });
  if (!parsed.ok) return parsed;
  const { status, headers, body, content, cookies } = parsed.value;
  if (content !== undefined && body !== null)
    return { ok: false, error: 'the answer has a body and content' };
  return {
    ok: true,
    value: {
      status,
      headers,
      body,
      ...(content === undefined ? {} : { content }),
      ...(cookies === undefined ? {} : { cookies }),
    },
  };
}
