// The broker↔core protocol, one module for both sides. The execute request a broker sends the core, checked down to the envelope:
//   POST /v1/execute, content-type: application/json, idempotency-key: <envelope id>,
//   body = the Envelope (lib/envelope.ts).
// Everything here is a 400 (or 404 for a route not in the table) when wrong.
// Its answer (200): the application's response, { status, headers, body, content?, cookies? }
// (core/response.ts), with x-nonstop-replayed: 1 when it was stored before. The broker reads
// it with `parseCoreAnswer`, the one parser of it.
import type { IncomingHttpHeaders } from 'node:http';
import type { RouteDefinition } from '../config/schemas/routes.js';
import { idMatchesKind, parseEnvelope, parseReply, type Envelope, type Reply } from './envelope.js';
import { errors } from './errors.js';

export const EXECUTE_PATH = '/v1/execute';
export const HEALTH_PATH = '/healthz';
export const REPLAYED_HEADER = 'x-nonstop-replayed';
export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** Largest execute request body the core reads. */
export const MAX_EXECUTE_BYTES = 1024 * 1024;

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
