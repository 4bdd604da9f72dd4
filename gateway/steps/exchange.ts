// One request on its way through the gateway's steps (gateway/handler.ts lists them in order).
// A step returns nothing to let the request go on, a refusal (sent as the gateway's JSON
// error), or ANSWERED when it wrote the answer itself (health, a preflight).
import type { RouteDefinition } from '../../config/schemas/routes.js';
import type { BodyType } from '../../lib/envelope.js';
import type { NonstopError } from '../../lib/errors.js';
import type { GatewayRequest, GatewayResponse } from '../http-message.js';
import type { KeyedRequest } from '../idempotency-key.js';
import type { RequestTrack } from '../metrics.js';
import { sendError } from '../respond.js';

export interface Exchange {
  readonly req: GatewayRequest;
  readonly res: GatewayResponse;
  readonly started: number;
  readonly url: string;
  /** The raw (percent-encoded) path, without the query. */
  readonly path: string;
  readonly search: string;
  readonly clientIp: string;
  /** Headers every answer to this request carries, whatever it is (CORS). */
  readonly answerHeaders: Record<string, string>;
  /** Its metrics: the route it counts under, the gateway's refusal if it gets one. */
  readonly track: RequestTrack;
}

/** A request that matched a route. HEAD runs its path's GET route and sends no body. */
export interface Routed extends Exchange {
  readonly route: RouteDefinition;
  readonly params: Record<string, string>;
  readonly head: boolean;
  keyed?: KeyedRequest;
  query: Record<string, string | string[]>;
  body: unknown;
  bodyType?: BodyType;
  /** The Cookie header the application gets: the route's cookies only. */
  cookie?: string;
}

export interface Refusal {
  readonly refuse: NonstopError;
  readonly headers?: Readonly<Record<string, string>>;
}
export const ANSWERED = 'answered';
export type StepResult = undefined | Refusal | typeof ANSWERED;
export type Step<X extends Exchange> = (x: X) => StepResult | Promise<StepResult>;

export const refusal = (err: NonstopError, headers?: Record<string, string>): Refusal =>
  headers === undefined ? { refuse: err } : { refuse: err, headers };

/** Runs `steps` in order; the one that answered or refused (the request is done), if any. */
export async function runSteps<X extends Exchange>(
  x: X,
  steps: readonly Step<X>[],
): Promise<Step<X> | undefined> {
  for (const step of steps) {
    const result = await step(x);
    if (result === undefined) continue;
    if (result !== ANSWERED) {
      x.track.refused(result.refuse.code);
      sendError(x.res, result.refuse, undefined, { ...x.answerHeaders, ...result.headers });
    }
    return step;
  }
  return undefined;
}
