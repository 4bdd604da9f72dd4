// The core's Prometheus metrics, in a registry of its own (prom-client): requests by route and
// the status the broker carries back, the handler's latency by route, database errors, and the
// process's own. Served by lib/metrics-listener.ts. Label values are bounded: a route of the
// table or a fixed name, never what a request wrote.
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export const METRIC_PREFIX = 'nonstop_core_';

/** What a request that did not name a route of the table is counted under. */
export const FIXED_ROUTES = {
  /** GET /healthz. */
  health: '_health',
  /** Refused before its route was known: another path, method or certificate, a malformed body. */
  refused: '_refused',
} as const;

/** From 1 ms (a replay, a refusal) to 30 s (the longest deadlines). */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** Where a database error happened: an execution's transaction, or a health probe. */
export type DatabaseErrorPlace = 'execute' | 'health';

export class CoreMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'status'>;
  private readonly latency: Histogram<'route'>;
  private readonly databaseErrors: Counter<'place'>;

  constructor(routeNames: Iterable<string>, options: { readonly processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: `${METRIC_PREFIX}requests_total`,
      help: "Requests the core answered, by route (or _health, _refused) and status: the application's status for an executed request, the core's own otherwise.",
      labelNames: ['route', 'status'],
      registers,
    });
    this.latency = new Histogram({
      name: `${METRIC_PREFIX}request_duration_seconds`,
      help: 'Time from a request to its answer, by route: the handler inside its transaction, or the replay.',
      labelNames: ['route'],
      buckets: [...LATENCY_BUCKETS],
      registers,
    });
    this.databaseErrors = new Counter({
      name: `${METRIC_PREFIX}database_errors_total`,
      help: 'Database errors (the database unreachable or failing), by where: execute, health.',
      labelNames: ['place'],
      registers,
    });
    // Shown (as zeros) from the start, not only once a route has had a request.
    for (const route of [...routeNames, ...Object.values(FIXED_ROUTES)]) this.latency.zero({ route });
    for (const place of ['execute', 'health'] as const) this.databaseErrors.inc({ place }, 0);
    if (options.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    }
  }

  /** One answered request; `route` is a route of the table or a FIXED_ROUTES value. */
  count(route: string, status: number, seconds: number): void {
    this.requests.inc({ route, status: String(status) });
    this.latency.observe({ route }, seconds);
  }

  databaseError(place: DatabaseErrorPlace): void {
    this.databaseErrors.inc({ place });
  }
}
