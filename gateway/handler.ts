// The gateway's request path, as the ordered list of its steps (gateway/steps/): each refuses,
// answers, or lets the request go on. Every refusal happens before any queue work and every
// accepted request ends with one answer.
import type { GatewayConfig } from '../config/schemas/gateway.js';
import type { RoutesConfig } from '../config/schemas/routes.js';
import { errors } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { IdempotencyScope } from './idempotency-key.js';
import { RateLimiter } from './rate-limit.js';
import type { ReplyWaiter } from './reply-waiter.js';
import type { JobQueue } from './queue-set.js';
import { isHttp2, type GatewayRequest, type GatewayResponse } from './http-message.js';
import { closeAfterAnswer, sendError } from './respond.js';
import type { Router } from './router.js';
import { body } from './steps/body.js';
import { capacity } from './steps/capacity.js';
import { cookies } from './steps/cookies.js';
import { asNonstopError, enqueue } from './steps/enqueue.js';
import { runSteps, type Exchange, type Routed, type Step } from './steps/exchange.js';
import { health } from './steps/health.js';
import { httpVersion } from './steps/http-version.js';
import { idempotency } from './steps/idempotency.js';
import { query } from './steps/query.js';
import { rateLimit } from './steps/rate-limit.js';
import { requestLimits } from './steps/request-limits.js';
import { route } from './steps/route.js';
import { staticFiles } from './steps/static-files.js';
import type { StaticFiles } from './static-files.js';

export interface HandlerDeps {
  readonly config: GatewayConfig;
  readonly router: Router;
  /** The route table's own settings (its CORS policy). */
  readonly routes?: Pick<RoutesConfig, 'cors'>;
  readonly queue: JobQueue;
  readonly replies: ReplyWaiter;
  readonly instanceId: string;
  readonly log: Logger;
  /** From `idempotency.secretFile`; without it, requests with an Idempotency-Key are refused. */
  readonly idempotency?: IdempotencyScope | undefined;
  /** The folders this gateway serves itself (`static`). */
  readonly staticFiles?: StaticFiles | undefined;
}

export type RequestHandler = (req: GatewayRequest, res: GatewayResponse) => void;

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
  const findRoute = route(router, deps.routes ?? {});
  // Before the route: what every request must pass, cheapest first.
  const before: Step<Exchange>[] = [
    httpVersion,
    health(queue, replies),
    rateLimit(limiter),
    requestLimits(limits),
    staticFiles(deps.staticFiles),
  ];
  // After it: what the route decides, then room to queue.
  const after: Step<Routed>[] = [
    cookies,
    idempotency(deps.idempotency),
    query,
    body(limits),
    capacity(queue, replies, limits.maxPending),
  ];
  const send = enqueue(deps);

  async function handle(req: GatewayRequest, res: GatewayResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const x: Exchange = {
      req,
      res,
      started: Date.now(),
      url,
      path: q === -1 ? url : url.slice(0, q),
      search: q === -1 ? '' : url.slice(q + 1),
      clientIp: normalizeIp(req.socket.remoteAddress),
      answerHeaders: {},
    };
    if (await runSteps(x, before)) return;
    const found = findRoute(x);
    if (typeof found === 'string' || 'refuse' in found) {
      await runSteps(x, [() => found]);
      return;
    }
    if (await runSteps(found, after)) return;
    // A client that reset its stream (HTTP/2) or hung up meanwhile gets nothing queued for it.
    if (clientGone(res)) return;
    await send(found);
  }

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      const known = asNonstopError(err);
      if (known.status === undefined || known.status >= 500) log.error({ err }, 'request failed');
      // After a refused body the rest of it is not read; close rather than drain.
      if (known.code === errors.BODY_TOO_LARGE.code) closeAfterAnswer(res);
      sendError(res, known);
    });
  };
}

function clientGone(res: GatewayResponse): boolean {
  return isHttp2(res) ? res.stream.destroyed : res.destroyed;
}

/** `::ffff:198.18.0.1` → `198.18.0.1`; a socket without an address gets a fixed key. */
export function normalizeIp(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
