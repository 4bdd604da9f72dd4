// The gateway's Prometheus metrics, in a registry of its own (prom-client): requests and their
// latency by route, the gateway's own error answers by code, failed queue adds, replies awaited,
// and when the served certificate expires. gateway/metrics-server.ts serves them on loopback.
// Label values are bounded: a route's name or one of a few fixed names, never a raw path. Every
// label set a request can touch is made once (at start, or at its first status code), so that a
// request costs a few lookups and increments.
import { X509Certificate } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GatewayResponse } from './http-message.js';

export const METRIC_PREFIX = 'nonstop_gateway_';

/**
 * What a request that no route of the table answered is counted under. A route name starts with a
 * letter (config/schemas/routes.ts), so these never collide with one.
 */
export const FIXED_ROUTES = {
  /** /healthz and /readyz. */
  health: '_health',
  /** A file from a static mount. */
  static: '_static',
  /** No route for this method and path (404, 405, a malformed path). */
  unmatched: '_unmatched',
  /** Refused before routing: HTTP version, rate limit, URL or header limits. */
  refused: '_refused',
  /** OPTIONS, answered by the gateway from the route table. */
  options: '_options',
  /** Plain HTTP redirected to HTTPS. */
  redirect: '_redirect',
  /** An ACME HTTP-01 challenge (/.well-known/acme-challenge/), answered or not. */
  acme: '_acme',
} as const;

/** From 5 ms (a static file, a refusal) to 30 s (the longest reply deadlines). */
export const LATENCY_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** Where the numbers that are read at scrape time come from. */
export interface MetricsSources {
  /** Requests waiting for their reply (ReplyWaiter.pending). */
  pending(): number;
}

/** One route label's series: its latency histogram and, per status code, its request counter. */
export interface RouteSeries {
  readonly route: string;
  /** @internal */
  readonly observe: (seconds: number) => void;
  /** @internal */
  readonly byStatus: Map<string, { readonly route: string; readonly status: string }>;
}

/** One request being tracked: set its route once it is known, its refusal when it gets one. */
export interface RequestTrack {
  route: RouteSeries;
  refused(code: string): void;
}

/** `NONSTOP_ERR_RATE_LIMITED` → `rate_limited`. */
export function refusalLabel(code: string): string {
  return (code.startsWith('NONSTOP_ERR_') ? code.slice('NONSTOP_ERR_'.length) : code).toLowerCase();
}

export type QueueFailureReason = 'not_connected' | 'oom' | 'noperm' | 'redis_error' | 'connection';

/**
 * Why an add to the queue failed, from what QueueSet.add threw: no endpoint connected (nothing
 * was tried), Redis refused for memory or permission (its reply's error code), another Redis
 * error reply, or a connection that failed during the command.
 */
export function queueFailureReason(err: unknown): QueueFailureReason {
  const cause = err instanceof Error ? err.cause : undefined;
  if (!(cause instanceof Error)) return 'not_connected';
  if (cause.message.startsWith('OOM ')) return 'oom';
  if (cause.message.startsWith('NOPERM ')) return 'noperm';
  return cause.name === 'ReplyError' ? 'redis_error' : 'connection';
}

/** The notAfter of the first certificate of a PEM (the leaf of a chain), in unix seconds. */
export function certificateExpiry(pem: string | Buffer): number {
  return Math.floor(Date.parse(new X509Certificate(pem).validTo) / 1000);
}

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'status'>;
  private readonly latency: Histogram<'route'>;
  private readonly refusals: Counter<'code'>;
  private readonly queueFailures: Counter<'reason'>;
  private readonly certificateExpiry: Gauge;
  private readonly series = new Map<string, RouteSeries>();
  private readonly refusalLabels = new Map<string, { readonly code: string }>();

  constructor(
    routeNames: Iterable<string>,
    sources: MetricsSources,
    options: { readonly processMetrics?: boolean } = {},
  ) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: `${METRIC_PREFIX}requests_total`,
      help: 'Answered requests, by route (or _health, _static, _unmatched, _refused, _options, _redirect) and HTTP status ("aborted": the client left first).',
      labelNames: ['route', 'status'],
      registers,
    });
    this.latency = new Histogram({
      name: `${METRIC_PREFIX}request_duration_seconds`,
      help: 'Time from a request to the end of its answer, by route.',
      labelNames: ['route'],
      buckets: [...LATENCY_BUCKETS],
      registers,
    });
    this.refusals = new Counter({
      name: `${METRIC_PREFIX}refusals_total`,
      help: "Answers that are the gateway's own error, not the application's, by error code (rate_limited, body_too_large, queue_unavailable, reply_timeout, ...).",
      labelNames: ['code'],
      registers,
    });
    this.queueFailures = new Counter({
      name: `${METRIC_PREFIX}queue_add_failures_total`,
      help: 'Accepted requests that could not be queued (answered 503), by reason: not_connected, oom, noperm, redis_error, connection.',
      labelNames: ['reason'],
      registers,
    });
    new Gauge({
      name: `${METRIC_PREFIX}pending_replies`,
      help: 'Queued requests waiting for their reply.',
      registers,
      collect() {
        this.set(sources.pending());
      },
    });
    this.certificateExpiry = new Gauge({
      name: `${METRIC_PREFIX}certificate_expiry_seconds`,
      help: 'When the certificate the HTTPS listener serves expires (its notAfter), in unix seconds.',
      registers,
    });
    for (const name of [...routeNames, ...Object.values(FIXED_ROUTES)]) this.seriesOf(name);
    // Series that exist from the start show as 0 rather than missing until the first event.
    for (const reason of ['not_connected', 'oom', 'noperm', 'redis_error', 'connection'] as const) {
      this.queueFailures.inc({ reason }, 0);
    }
    if (options.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    }
  }

  /** The series of a route name or FIXED_ROUTES value (made at start for every known one). */
  seriesOf(route: string): RouteSeries {
    let s = this.series.get(route);
    if (s === undefined) {
      // Shown (as zeros) from the start, not only once the route has had a request.
      this.latency.zero({ route });
      const latency = this.latency.labels(route);
      s = { route, observe: (seconds) => latency.observe(seconds), byStatus: new Map() };
      this.series.set(route, s);
    }
    return s;
  }

  /**
   * Starts tracking a request under `route` (changed on the track once the route is known): its
   * status and latency are counted when its response closes, as "aborted" when it closed before
   * the answer was complete. One listener: 'close' follows 'finish' on every response.
   */
  track(res: GatewayResponse, route: RouteSeries): RequestTrack {
    const track = new Tracked(this, route);
    res.on('close', () => {
      this.count(
        track.route,
        res.writableEnded ? String(res.statusCode) : 'aborted',
        (performance.now() - track.started) / 1000,
      );
    });
    return track;
  }

  /** Counts one answered request (what `track` does when it ends). */
  count(series: RouteSeries, status: string, seconds: number): void {
    let labels = series.byStatus.get(status);
    if (labels === undefined) {
      labels = { route: series.route, status };
      series.byStatus.set(status, labels);
    }
    this.requests.inc(labels);
    series.observe(seconds);
  }

  refuse(code: string): void {
    let labels = this.refusalLabels.get(code);
    if (labels === undefined) {
      labels = { code: refusalLabel(code) };
      this.refusalLabels.set(code, labels);
    }
    this.refusals.inc(labels);
  }

  queueFailed(err: unknown): void {
    this.queueFailures.inc({ reason: queueFailureReason(err) });
  }

  /**
   * The certificate the HTTPS listener now serves (PEM, the leaf first): call it whenever the
   * listener's secure context changes (startGateway and reloadTls do; so must any other path that
   * installs a certificate, such as ACME).
   */
  setCertificate(pem: string | Buffer): void {
    this.certificateExpiry.set(certificateExpiry(pem));
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

class Tracked implements RequestTrack {
  readonly started = performance.now();

  constructor(
    private readonly metrics: GatewayMetrics,
    public route: RouteSeries,
  ) {}

  refused(code: string): void {
    this.metrics.refuse(code);
  }
}
