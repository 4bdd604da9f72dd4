// The gateway's request pipeline: limits, routing, body, envelope, queue, reply. Every
// refusal happens before any queue work and every accepted request ends with one answer.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig } from '../config/schemas/gateway.js';
import { errors, isNonstopError, type NonstopError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { isJsonContentType, MAX_JSON_DEPTH, nestedDeeperThan, readBody } from './body.js';
import { buildEnvelope, parseQuery } from './envelope.js';
import {
  IDEMPOTENCY_KEY_HEADER,
  parseIdempotencyKey,
  type IdempotencyScope,
  type KeyedRequest,
} from './idempotency-key.js';
import { RateLimiter } from './rate-limit.js';
import type { ReplyWaiter } from './reply-waiter.js';
import type { JobQueue } from './queue-set.js';
import { sendError, sendJson, sendReply } from './respond.js';
import type { Router } from './router.js';

const MAX_URL_LENGTH = 8192;
const RETRY_AFTER_SECONDS = '5';
/** JSON must be UTF-8 (RFC 8259): invalid bytes are malformed JSON, not U+FFFD. A BOM stays
 * in the text, so JSON.parse refuses it as before. */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface HandlerDeps {
  readonly config: GatewayConfig;
  readonly router: Router;
  readonly queue: JobQueue;
  readonly replies: ReplyWaiter;
  readonly instanceId: string;
  readonly log: Logger;
  /** From `idempotency.secretFile`; without it, requests with an Idempotency-Key are refused. */
  readonly idempotency?: IdempotencyScope | undefined;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function createRequestHandler(deps: HandlerDeps): RequestHandler {
  const { config, router, queue, replies, log } = deps;
  const limits = config.limits;
  const limiter = new RateLimiter(
    limits.ratePerSecond,
    limits.rateBurst,
    limits.maxTrackedClients,
    Date.now,
    limits.ipv6PrefixLength,
  );

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const search = q === -1 ? '' : url.slice(q + 1);

    // HTTP/0.9 (a bare `GET /path`) carries no headers at all; only 1.0 and 1.1 are served.
    if (req.httpVersionMajor !== 1) return refuse(res, errors.BAD_REQUEST('Only HTTP/1.0 and HTTP/1.1'));
    // HTTP/1.0 has no chunked framing: such a message's framing is faulty (RFC 9112, 6.1), and
    // a proxy in front could frame it differently (request smuggling).
    if (req.httpVersionMinor === 0 && req.headers['transfer-encoding'] !== undefined) {
      return refuse(res, errors.BAD_REQUEST('Transfer-Encoding in an HTTP/1.0 request'), {
        connection: 'close',
      });
    }

    if (req.method === 'GET' && path === '/healthz') return sendJson(res, 200, { ok: true });
    if (req.method === 'GET' && path === '/readyz') {
      const ready = queue.ready && replies.connected;
      return sendJson(res, ready ? 200 : 503, { ready, queue: queue.ready, replies: replies.connected });
    }

    const clientIp = normalizeIp(req.socket.remoteAddress);
    const rate = limiter.take(clientIp);
    if (!rate.allowed) {
      return refuse(res, errors.RATE_LIMITED(), { 'retry-after': String(rate.retryAfterSeconds) });
    }
    if (url.length > MAX_URL_LENGTH) return refuse(res, errors.URI_TOO_LONG());
    if (req.rawHeaders.length / 2 > limits.maxHeaders) {
      return refuse(res, errors.HEADERS_TOO_LARGE(`More than ${limits.maxHeaders} headers`));
    }

    const match = router.match(req.method ?? '', path);
    if (match.kind === 'not-found') return refuse(res, errors.NOT_FOUND());
    if (match.kind === 'bad-path')
      return refuse(res, errors.BAD_REQUEST('Malformed percent-encoding in path'));
    if (match.kind === 'method-not-allowed') {
      return refuse(res, errors.METHOD_NOT_ALLOWED(), { allow: match.allow.join(', ') });
    }
    const route = match.route;
    const idempotencyKey = parseIdempotencyKey(req.headers[IDEMPOTENCY_KEY_HEADER]);
    // Scoped to the client's identity headers: the same key from another identity is another
    // request, never the stored answer of this one.
    let keyed: KeyedRequest | undefined;
    if (idempotencyKey !== undefined) {
      if (deps.idempotency === undefined) return refuse(res, errors.IDEMPOTENCY_UNAVAILABLE());
      keyed = deps.idempotency.keyed(idempotencyKey, req.headers);
    }

    const query = parseQuery(search);
    if (query === null) return refuse(res, errors.BAD_REQUEST('Too many query parameters'));

    let body: unknown = null;
    const hasBody =
      req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (hasBody) {
      if (route.schema.body === undefined) {
        return refuse(res, errors.BAD_REQUEST(`${route.method} ${route.path} takes no request body`));
      }
      if (!isJsonContentType(req.headers['content-type']))
        return refuse(res, errors.UNSUPPORTED_MEDIA_TYPE());
      const limit = Math.min(route.maxBodyBytes ?? limits.maxBodyBytes, limits.maxBodyBytes);
      const raw = await readBody(req, limit);
      try {
        body = JSON.parse(UTF8.decode(raw)) as unknown;
      } catch {
        return refuse(res, errors.MALFORMED_JSON());
      }
      if (nestedDeeperThan(body, MAX_JSON_DEPTH)) {
        return refuse(res, errors.MALFORMED_JSON(`Request body nests deeper than ${MAX_JSON_DEPTH} levels`));
      }
    }

    if (replies.pending >= limits.maxPending) {
      return refuse(res, errors.QUEUE_UNAVAILABLE('Gateway is at capacity'), { 'retry-after': '1' });
    }
    if (!queue.ready || !replies.connected) {
      return refuse(res, errors.QUEUE_UNAVAILABLE(), { 'retry-after': RETRY_AFTER_SECONDS });
    }

    const timeoutMs = route.timeoutMs ?? config.replyTimeoutMs;
    const envelope = buildEnvelope({
      route,
      path,
      params: match.params,
      query,
      headers: req.headers,
      forwardHeaders: config.forwardHeaders,
      body,
      clientIp,
      gatewayId: config.id,
      replyTo: deps.instanceId,
      now: started,
      timeoutMs,
      keyed,
    });
    // A keyed request whose twin is in flight: its reply goes to the twin's waiter, not to us.
    const inFlight = () => {
      log.info({ requestId: envelope.id, route: route.name }, 'idempotency key in flight; refused');
      sendError(res, errors.IDEMPOTENCY_KEY_IN_FLIGHT(), envelope.id, { 'retry-after': '1' });
    };
    if (replies.isWaiting(envelope.id)) return inFlight();
    const reply = replies.wait(envelope.id, timeoutMs);
    try {
      if ((await queue.add(envelope)) === 'in-flight') {
        replies.cancel(envelope.id);
        return inFlight();
      }
    } catch (err) {
      replies.cancel(envelope.id);
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
      log.warn({ requestId: envelope.id, route: route.name, err: cause }, 'queue unavailable');
      return sendError(res, asNonstopError(err), envelope.id, { 'retry-after': RETRY_AFTER_SECONDS });
    }
    const answer = await reply;
    const durationMs = Date.now() - started;
    if (answer === null) {
      log.warn({ requestId: envelope.id, route: route.name, durationMs }, 'no reply before the deadline');
      return sendError(res, errors.REPLY_TIMEOUT(), envelope.id);
    }
    log.info(
      {
        requestId: envelope.id,
        route: route.name,
        status: answer.status,
        durationMs,
        clientIp,
        ...(envelope.idempotent === true ? { idempotent: true } : {}),
      },
      'answered',
    );
    sendReply(res, answer);
  }

  function refuse(res: ServerResponse, err: NonstopError, headers: Record<string, string> = {}) {
    sendError(res, err, undefined, headers);
  }

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      const known = asNonstopError(err);
      if (known.status === undefined || known.status >= 500) log.error({ err }, 'request failed');
      // After a refused body the rest of it is not read; close rather than drain.
      if (known.code === errors.BODY_TOO_LARGE.code) res.setHeader('connection', 'close');
      sendError(res, known);
    });
  };
}

function asNonstopError(err: unknown): NonstopError {
  return isNonstopError(err) ? err : errors.INTERNAL(undefined, undefined, { cause: err });
}

/** `::ffff:198.18.0.1` → `198.18.0.1`; a socket without an address gets a fixed key. */
export function normalizeIp(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
