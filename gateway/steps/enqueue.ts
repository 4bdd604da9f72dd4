// The last step: the envelope queued, its reply awaited, and the answer sent (or 504 when no
// reply comes by the deadline), compressed where the route table allows. A keyed request whose
// twin is in flight is refused with 409.
import type { GatewayConfig } from '../../config/schemas/gateway.js';
import type { RoutesConfig } from '../../config/schemas/routes.js';
import { errors, isNonstopError, type NonstopError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { buildEnvelope } from '../envelope.js';
import type { GatewayMetrics } from '../metrics.js';
import type { JobQueue } from '../queue-set.js';
import type { ReplyWaiter } from '../reply-waiter.js';
import { mayCompressReply } from '../compression.js';
import { sendError, sendReply } from '../respond.js';
import type { Routed } from './exchange.js';

const RETRY_AFTER_SECONDS = '5';

export interface EnqueueDeps {
  readonly config: GatewayConfig;
  /** The route table's own settings (its `compress` default). */
  readonly routes?: Pick<RoutesConfig, 'compress'>;
  readonly queue: JobQueue;
  readonly replies: ReplyWaiter;
  readonly instanceId: string;
  readonly log: Logger;
  readonly metrics: GatewayMetrics;
}

export function asNonstopError(err: unknown): NonstopError {
  return isNonstopError(err) ? err : errors.INTERNAL(undefined, undefined, { cause: err });
}

export function enqueue({
  config,
  routes: table = {},
  queue,
  replies,
  instanceId,
  log,
  metrics,
}: EnqueueDeps) {
  return async (x: Routed): Promise<void> => {
    const { req, res, route } = x;
    const timeoutMs = route.timeoutMs ?? config.replyTimeoutMs;
    const envelope = buildEnvelope({
      route,
      path: x.path,
      params: x.params,
      query: x.query,
      headers: req.headers,
      forwardHeaders: config.forwardHeaders,
      body: x.body,
      bodyType: x.bodyType,
      cookie: x.cookie,
      clientIp: x.clientIp,
      gatewayId: config.id,
      replyTo: instanceId,
      now: x.started,
      timeoutMs,
      keyed: x.keyed,
    });
    const fail = (err: NonstopError, headers: Record<string, string> = {}) => {
      x.track.refused(err.code);
      sendError(res, err, envelope.id, { ...x.answerHeaders, ...headers });
    };
    // A keyed request whose twin is in flight: its reply goes to the twin's waiter, not to us.
    const inFlight = () => {
      log.info({ requestId: envelope.id, route: route.name }, 'idempotency key in flight; refused');
      fail(errors.IDEMPOTENCY_KEY_IN_FLIGHT(), { 'retry-after': '1' });
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
      metrics.queueFailed(err);
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
      log.warn({ requestId: envelope.id, route: route.name, err: cause }, 'queue unavailable');
      return fail(asNonstopError(err), { 'retry-after': RETRY_AFTER_SECONDS });
    }
    const answer = await reply;
    const durationMs = Date.now() - x.started;
    if (answer === null) {
      log.warn({ requestId: envelope.id, route: route.name, durationMs }, 'no reply before the deadline');
      return fail(errors.REPLY_TIMEOUT());
    }
    log.info(
      {
        requestId: envelope.id,
        route: route.name,
        status: answer.status,
        durationMs,
        clientIp: x.clientIp,
        ...(envelope.idempotent === true ? { idempotent: true } : {}),
      },
      'answered',
    );
    const compressible = mayCompressReply(route, table, (answer.cookies?.length ?? 0) > 0);
    await sendReply(res, answer, {
      method: req.method ?? 'GET',
      headers: req.headers,
      extra: x.answerHeaders,
      compression: compressible ? config.compression : undefined,
    });
  };
}
