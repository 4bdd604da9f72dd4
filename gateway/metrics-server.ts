// The gateway's metrics listener: plain HTTP, GET /metrics only, on loopback unless the config
// explicitly allows an admin network (config/gateway-checks.ts). Never one of the public listeners.
// A request naming another host than this listener's is refused (421), as the broker's status
// listener does: a web page an admin has open cannot read it by rebinding its name to 127.0.0.1.
import http from 'node:http';
import type { GatewayMetricsListener } from '../config/schemas/gateway.js';
import {
  adminHostAllowed,
  listenAdmin,
  refuseForeignHost,
  type AdminListener,
} from '../lib/admin-listener.js';
import type { Logger } from '../lib/log.js';
import type { GatewayMetrics } from './metrics.js';

/** The Host header names this listener: loopback, or its own (admin network) address. */
export function hostAllowed(
  header: string | undefined,
  where: Pick<GatewayMetricsListener, 'host' | 'allowNonLoopback'>,
): boolean {
  return adminHostAllowed(header, where.allowNonLoopback ? where.host : undefined);
}

export type MetricsServer = AdminListener;

export function startMetricsServer(
  where: GatewayMetricsListener,
  metrics: GatewayMetrics,
  log: Logger,
): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (refuseForeignHost(req, res, where.allowNonLoopback ? where.host : undefined)) return;
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET', 'content-length': 0 }).end();
      return;
    }
    if ((req.url ?? '/').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-length': 0 }).end();
      return;
    }
    metrics.text().then(
      (body) => res.writeHead(200, { 'content-type': metrics.contentType }).end(body),
      (err: unknown) => {
        log.error({ err: err instanceof Error ? err.message : String(err) }, 'metrics collection failed');
        res.writeHead(500, { 'content-length': 0 }).end();
      },
    );
  });
  // A scraper asks every few seconds; nothing else should hold connections here for long.
  server.headersTimeout = 5000;
  server.requestTimeout = 10000;
  return listenAdmin(server, where, log, 'metrics endpoint');
}
