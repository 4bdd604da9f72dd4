// The gateway's metrics listener: plain HTTP, GET /metrics only, on loopback unless the config
// explicitly allows an admin network (config/gateway-checks.ts). Never one of the public listeners.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../lib/log.js';
import type { GatewayMetrics } from './metrics.js';

export interface MetricsServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

export function startMetricsServer(
  where: { readonly host: string; readonly port: number },
  metrics: GatewayMetrics,
  log: Logger,
): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
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
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.port, where.host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      log.info({ address }, 'metrics endpoint listening');
      resolve({
        address,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
