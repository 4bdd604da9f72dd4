// The broker's Prometheus metrics (prom-client), in two parts because a broker runs in several
// processes. BrokerWorkMetrics lives where the queues are worked (the one broker process, or each
// cell): each job's time at the core, and the core's failures. Its registry travels as JSON in
// the status snapshot (broker/cells.ts), and BrokerStatusMetrics, in the process with the status
// listener, sums those (each cell holds its own gateways' series) with what the snapshot says
// (tunnels, jobs by outcome, queues, cells, ACME answers) and this process's own metrics. The
// names follow the gateway's scheme: nonstop_broker_<what>. Label values are gateway ids, fixed
// states and outcomes, and error codes from lib/errors.ts: never what a request wrote.
import {
  AggregatorRegistry,
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type MetricObjectWithValues,
  type MetricValue,
} from 'prom-client';
import type { StatusSnapshot } from './status-server.js';
import { TUNNEL_STATES } from './tunnel.js';

export const METRIC_PREFIX = 'nonstop_broker_';

/** One process's BrokerWorkMetrics registry, as prom-client's JSON (what cluster workers send). */
export type WorkMetricsJson = readonly MetricObjectWithValues<MetricValue<string>>[];

/** From 5 ms (a replay) to 30 s (the longest reply deadlines), as the gateway's. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** `NONSTOP_ERR_CORE_UNAVAILABLE` → `core_unavailable`. */
const codeLabel = (code: string) =>
  (code.startsWith('NONSTOP_ERR_') ? code.slice('NONSTOP_ERR_'.length) : code).toLowerCase();

/** What a gateway's worker counts of the requests it hands to the core. */
export interface CoreCallMetrics {
  /** A request the core answered (`failure` undefined) or did not complete (its error code). */
  observe(seconds: number, failure?: string): void;
}

export class BrokerWorkMetrics {
  readonly registry = new Registry();
  private readonly latency: Histogram<'gateway' | 'result'>;
  private readonly failures: Counter<'gateway' | 'code'>;

  constructor(gatewayIds: Iterable<string>) {
    const registers = [this.registry];
    this.latency = new Histogram({
      name: `${METRIC_PREFIX}core_request_duration_seconds`,
      help: "Time from handing a valid request to the core to its answer, retries included, by gateway and result: answered (the application's answer), failed (the core did not complete it).",
      labelNames: ['gateway', 'result'],
      buckets: [...LATENCY_BUCKETS],
      registers,
    });
    this.failures = new Counter({
      name: `${METRIC_PREFIX}core_failures_total`,
      help: 'Requests the core did not complete (the gateway answered an error), by gateway and error code: core_unavailable, internal, answer_too_large, idempotency_key_reused.',
      labelNames: ['gateway', 'code'],
      registers,
    });
    for (const gateway of gatewayIds) {
      // Shown (as zeros) from the start, not only once the gateway has had a request.
      for (const result of ['answered', 'failed']) this.latency.zero({ gateway, result });
    }
  }

  forGateway(gateway: string): CoreCallMetrics {
    const answered = this.latency.labels(gateway, 'answered');
    const failed = this.latency.labels(gateway, 'failed');
    return {
      observe: (seconds, failure) => {
        if (failure === undefined) answered.observe(seconds);
        else {
          failed.observe(seconds);
          this.failures.inc({ gateway, code: codeLabel(failure) });
        }
      },
    };
  }

  json(): Promise<WorkMetricsJson> {
    return this.registry.getMetricsAsJSON();
  }
}

/** The status listener's /metrics: the snapshot's series, the work metrics, the process's own. */
export class BrokerStatusMetrics {
  private readonly registry = new Registry();
  /** The snapshot being exposed; set just before each collection. */
  private current: StatusSnapshot = { tunnels: [], jobs: {}, queues: {}, cells: [] };

  constructor(options: { readonly processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const snapshot = () => this.current;
    new Gauge({
      name: `${METRIC_PREFIX}tunnel_state`,
      help: 'Tunnel state per gateway: 1 for the current state (connecting, up, backing-off, closed), 0 otherwise.',
      labelNames: ['gateway', 'state'],
      registers,
      collect() {
        this.reset();
        for (const t of snapshot().tunnels)
          for (const state of TUNNEL_STATES)
            this.set({ gateway: t.gatewayId, state }, t.state === state ? 1 : 0);
      },
    });
    const perTunnel = (name: string, help: string, value: (t: StatusSnapshot['tunnels'][number]) => number) =>
      new Counter({
        name: `${METRIC_PREFIX}${name}`,
        help,
        labelNames: ['gateway'],
        registers,
        collect() {
          this.reset();
          for (const t of snapshot().tunnels) this.inc({ gateway: t.gatewayId }, value(t));
        },
      });
    perTunnel('tunnel_reconnects_total', 'Tunnel connection attempts after the first.', (t) => t.reconnects);
    perTunnel('tunnel_forwarded_total', 'Connections carried from the gateway to Redis.', (t) => t.forwarded);
    perTunnel(
      'tunnel_throttled_total',
      'Times reading from a gateway paused, over its budget of channel opens or SSH messages.',
      (t) => t.throttled,
    );
    perTunnel(
      'tunnel_paused_seconds_total',
      'Time reading from a gateway was paused, over its budget.',
      (t) => t.pausedMs / 1000,
    );
    new Counter({
      name: `${METRIC_PREFIX}jobs_total`,
      help: 'Jobs this broker processed, by gateway and outcome: answered, invalid (refused 400), tampered (dropped), expired (past its deadline).',
      labelNames: ['gateway', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const [gateway, counts] of Object.entries(snapshot().jobs))
          for (const [outcome, n] of Object.entries(counts)) this.inc({ gateway, outcome }, n);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}queue_jobs`,
      help: "Jobs in a gateway's queue, by state (waiting, active, delayed), as last sampled.",
      labelNames: ['gateway', 'state'],
      registers,
      collect() {
        this.reset();
        for (const [gateway, depth] of Object.entries(snapshot().queues))
          for (const [state, n] of Object.entries(depth) as [string, number][])
            this.set({ gateway, state }, n);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}acme_answers_total`,
      help: 'ACME challenge answers gateways published: relayed, or refused (malformed, or for a name the gateway does not serve).',
      labelNames: ['gateway', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const [gateway, counts] of Object.entries(snapshot().acme ?? {}))
          for (const outcome of ['relayed', 'refused'] as const)
            this.inc({ gateway, outcome }, counts[outcome]);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}cell_up`,
      help: "Whether the process serving a gateway's queue and tunnel is running (a broker with cells).",
      labelNames: ['gateway'],
      registers,
      collect() {
        this.reset();
        for (const c of snapshot().cells) this.set({ gateway: c.gatewayId }, c.state === 'running' ? 1 : 0);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}cell_restarts_total`,
      help: "Times a gateway's process was started again after it exited.",
      labelNames: ['gateway'],
      registers,
      collect() {
        this.reset();
        for (const c of snapshot().cells) this.inc({ gateway: c.gatewayId }, c.restarts);
      },
    });
    if (options.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text of `snapshot`, its processes' work metrics and this process. */
  async text(snapshot: StatusSnapshot): Promise<string> {
    this.current = snapshot;
    const work = AggregatorRegistry.aggregate<typeof this.registry.contentType>(
      (snapshot.work ?? []) as WorkMetricsJson[],
    );
    return Registry.merge([this.registry, work]).metrics();
  }
}
