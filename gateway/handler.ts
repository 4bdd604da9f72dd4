// The gateway's request path, as the ordered list of its steps (gateway/steps/): each refuses,
// answers, or lets the request go on. Every refusal happens before any queue work and every
// accepted request ends with one answer.
import type { GatewayConfig } from '../config/schemas/gateway.js';
import type { RoutesConfig } from '../config/schemas/routes.js';
import { errors } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { ClientAddresses } from './client-address.js';
import type { ChallengeStore } from './acme/challenges.js';
import type { CertificateReadiness } from './acme/manager.js';
import type { IdempotencyScope } from './idempotency-key.js';
import { FIXED_ROUTES, type GatewayMetrics, type RequestTrack } from './metrics.js';
import { RateLimiter } from './rate-limit.js';
import type { ReplyWaiter } from './reply-waiter.js';
import type { JobQueue } from './queue-set.js';
import { isHttp2, type GatewayRequest, type GatewayResponse } from './http-message.js';
import { closeAfterAnswer, sendError } from './respond.js';
import type { Router } from './router.js';
import { body } from './steps/body.js';
import { capacity } from './steps/capacity.js';
import { cookies } from './steps/cookies.js';
import { acmeChallenge } from './steps/acme-challenge.js';
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
  /** The route table's own settings (its CORS policy, its `compress` default). */
  readonly routes?: Pick<RoutesConfig, 'cors' | 'compress'>;
  readonly queue: JobQueue;
  readonly replies: ReplyWaiter;
  readonly instanceId: string;
  readonly log: Logger;
  /** From `idempotency.secretFile`; without it, requests with an Idempotency-Key are refused. */
  readonly idempotency?: IdempotencyScope | undefined;
  /** The folders this gateway serves itself (`static`). */
  readonly staticFiles?: StaticFiles | undefined;
  /** Every request is counted here, under its route's name or a FIXED_ROUTES label. */
  readonly metrics: GatewayMetrics;
  /** Who a request comes from (the listeners' PROXY headers, trusted forwarding headers). */
  readonly clientAddresses?: ClientAddresses | undefined;
  /** With ACME's http-01: the answers to its challenges. */
  readonly challenges?: ChallengeStore | undefined;
  /** With ACME: /readyz fails while no unexpired certificate is served. */
  readonly certificate?: { readiness(): CertificateReadiness } | undefined;
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
  const clients = deps.clientAddresses ?? new ClientAddresses(config.clientAddress, log);
  const findRoute = route(router, deps.routes ?? {});
  const acmeStep = acmeChallenge(deps.challenges);
  const healthStep = health(queue, replies, deps.certificate);
  const staticStep = staticFiles(deps.staticFiles);
  // Before the route: what every request must pass, cheapest first.
  const before: Step<Exchange>[] = [
    httpVersion,
    acmeStep,
    healthStep,
    rateLimit(limiter),
    requestLimits(limits),
    staticStep,
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
  const { metrics } = deps;
  const series = {
    health: metrics.seriesOf(FIXED_ROUTES.health),
    acme: metrics.seriesOf(FIXED_ROUTES.acme),
    static: metrics.seriesOf(FIXED_ROUTES.static),
    refused: metrics.seriesOf(FIXED_ROUTES.refused),
    unmatched: metrics.seriesOf(FIXED_ROUTES.unmatched),
    options: metrics.seriesOf(FIXED_ROUTES.options),
  };

  async function handle(req: GatewayRequest, res: GatewayResponse, track: RequestTrack): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const x: Exchange = {
      req,
      res,
      started: Date.now(),
      url,
      path: q === -1 ? url : url.slice(0, q),
      search: q === -1 ? '' : url.slice(q + 1),
      clientIp: clients.of(req),
      answerHeaders: {},
      track,
    };
    const ended = await runSteps(x, before);
    if (ended !== undefined) {
      track.route =
        ended === healthStep
          ? series.health
          : ended === staticStep
            ? series.static
            : ended === acmeStep
              ? series.acme
              : series.refused;
      return;
    }
    const found = findRoute(x);
    if (typeof found === 'string' || 'refuse' in found) {
      track.route = req.method === 'OPTIONS' ? series.options : series.unmatched;
      await runSteps(x, [() => found]);
      return;
    }
    track.route = metrics.seriesOf(found.route.name);
    if (await runSteps(found, after)) return;
    // A client that reset its stream (HTTP/2) or hung up meanwhile gets nothing queued for it.
    // A stream's HEADERS and its RST_STREAM often come in one read, and nghttp2 hands the
    // request over (and the steps above run) before it reads the reset: one turn of the event
    // loop lets it, so that a rapid-reset client's streams cost no queued work.
    if (isHttp2(res)) await new Promise<void>((resolve) => setImmediate(resolve));
    if (clientGone(res)) return;
    await send(found);
  }

  return (req, res) => {
    // Counted as refused until a step or the route says otherwise.
    const track = metrics.track(res, series.refused);
    handle(req, res, track).catch((err: unknown) => {
      const known = asNonstopError(err);
      track.refused(known.code);
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
