// A daemon's Prometheus listener (the gateway's, the core's, the knock guard's): plain HTTP, GET /metrics only,
// from a prom-client registry of the daemon's own. Loopback unless the config allows an admin
// network (config/schemas/metrics-listener.ts); the same refusal of a foreign Host as every admin
// listener (lib/admin-listener.ts), so a page an admin has open cannot read it by DNS rebinding.
import http from 'node:http';
import { isLoopbackHost } from '../config/gateway-checks.js';
import type { MetricsListenerConfig } from '../config/schemas/metrics-listener.js';
import { listenAdmin, refuseForeignHost, type AdminListener } from './admin-listener.js';
import { errors } from './errors.js';
import type { Logger } from './log.js';

export type MetricsListener = AdminListener;

/** What a listener serves: a prom-client Registry, or anything that renders like one. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export function startMetricsListener(
  where: MetricsListenerConfig,
  registry: MetricsSource,
  log: Logger,
): Promise<MetricsListener> {
  // The config check refuses this too; a listener started from code is held to the same rule.
  if (!where.allowNonLoopback && !isLoopbackHost(where.host)) {
    return Promise.reject(
      errors.CONFIG_INVALID(
        `metrics.host must be a loopback address unless metrics.allowNonLoopback is set (got ${JSON.stringify(where.host)})`,
      ),
    );
  }
  const ownHost = where.allowNonLoopback ? where.host : undefined;
  const server = http.createServer((req, res) => {
    if (refuseForeignHost(req, res, ownHost)) return;
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET', 'content-length': 0 }).end();
      return;
    }
    if ((req.url ?? '/').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-length': 0 }).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
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
