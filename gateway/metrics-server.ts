// The gateway's metrics listener: plain HTTP, GET /metrics only, on loopback unless the config
// explicitly allows an admin network (config/gateway-checks.ts). Never one of the public listeners.
// A request naming another host than this listener's is refused (421), as the broker's status
// listener does: a web page an admin has open cannot read it by rebinding its name to 127.0.0.1.
import type { GatewayMetricsListener } from '../config/schemas/gateway.js';
import { adminHostAllowed, type AdminListener } from '../lib/admin-listener.js';
import type { Logger } from '../lib/log.js';
import { startMetricsListener } from '../lib/metrics-listener.js';
import type { GatewayMetrics } from './metrics.js';

/** The Host header names this listener: loopback, or its own (admin network) address. */
export function hostAllowed(
  header: string | undefined,
  where: Pick<GatewayMetricsListener, 'host' | 'allowNonLoopback'>,
): boolean {
  return adminHostAllowed(header, where.allowNonLoopback ? where.host : undefined);
}

export type MetricsServer = AdminListener;

/** The gateway's registry on its listener (lib/metrics-listener.ts, as the core's and the guard's). */
export function startMetricsServer(
  where: GatewayMetricsListener,
  metrics: GatewayMetrics,
  log: Logger,
): Promise<MetricsServer> {
  return startMetricsListener(
    where,
    { metrics: () => metrics.text(), contentType: metrics.contentType },
    log,
  );
}
