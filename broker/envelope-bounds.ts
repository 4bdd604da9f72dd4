// Bounds on the envelope fields a gateway sets, which its schema alone cannot judge: times
// against the queue's clock (lib/queue-clock.ts) and the gateway's configured timeouts, headers
// against what that gateway forwards. A compromised gateway could otherwise give a job a deadline
// weeks away (the broker would retry the core until then) or hand the core headers its gateway
// never passes on.
import type { GatewayLink } from '../config/schemas/broker.js';
import type { RouteDefinition, RoutesConfig } from '../config/schemas/routes.js';
import { parseCookieHeader } from '../lib/cookies.js';
import type { Envelope } from '../lib/envelope.js';

/**
 * How far a receivedAt may be ahead of now, both in the queue's clock: the gateway's and the
 * broker's measurements of that clock differ by up to half a round trip each.
 */
export const CLOCK_SKEW_MS = 2000;

/** Room in a job's data for what surrounds the body: path, query, headers, ids (bytes). */
const ENVELOPE_OVERHEAD_BYTES = 512 * 1024;

/**
 * The largest job data a gateway can queue: its body limit three times over (a byte the
 * gateway decodes as U+FFFD takes three in the envelope's JSON), plus the rest of the envelope.
 */
export function maxJobDataBytes(gateway: GatewayLink): number {
  return 3 * gateway.maxBodyBytes + ENVELOPE_OVERHEAD_BYTES;
}

export class EnvelopeBounds {
  private readonly timeouts = new Map<string, number>();
  private readonly routes = new Map<string, RouteDefinition>();
  private readonly headers: ReadonlySet<string>;

  constructor(
    routes: RoutesConfig,
    private readonly gateway: GatewayLink,
  ) {
    for (const r of routes.routes) {
      this.timeouts.set(r.name, r.timeoutMs ?? gateway.replyTimeoutMs);
      this.routes.set(r.name, r);
    }
    this.headers = new Set(gateway.forwardHeaders);
  }

  /** What is out of bounds in `envelope` at `now` (broker clock), or undefined. */
  check(envelope: Envelope, now: number): string | undefined {
    const timeout = this.timeouts.get(envelope.route) ?? this.gateway.replyTimeoutMs;
    const window = envelope.deadline - envelope.receivedAt;
    if (window < 0) return 'deadline before receivedAt';
    if (window > timeout) {
      return `deadline ${window} ms after receivedAt, more than the ${timeout} ms the gateway waits`;
    }
    if (envelope.receivedAt > now + CLOCK_SKEW_MS) {
      return `receivedAt ${envelope.receivedAt - now} ms in the future`;
    }
    const route = this.routes.get(envelope.route);
    for (const name of Object.keys(envelope.headers)) {
      if (name === 'cookie') {
        const refused = cookieOutsideRoute(envelope.headers.cookie ?? '', route);
        if (refused !== undefined) return refused;
        continue;
      }
      if (!this.headers.has(name))
        return `header "${name}", which gateway ${this.gateway.id} does not forward`;
    }
    const bodyType = envelope.bodyType ?? 'json';
    if (route !== undefined && envelope.body !== null && !route.bodyTypes.includes(bodyType)) {
      return `a ${bodyType} body, which route ${route.name} does not take`;
    }
    return undefined;
  }
}

/** Why a Cookie header is more than the route lets through (its cookies only), or undefined. */
function cookieOutsideRoute(header: string, route: RouteDefinition | undefined): string | undefined {
  const pairs = parseCookieHeader(header);
  if (pairs === null) return 'a malformed Cookie header';
  const allowed = new Set(route?.cookies ?? []);
  const other = pairs.find(([name]) => !allowed.has(name));
  return other === undefined
    ? undefined
    : `cookie "${other[0].slice(0, 64)}", which route ${route?.name ?? '?'} does not take`;
}
