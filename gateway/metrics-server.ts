// The gateway's metrics listener: plain HTTP, GET /metrics only, on loopback unless the config
// explicitly allows an admin network (config/gateway-checks.ts). Never one of the public listeners.
// A request naming another host than this listener's is refused (421), as the broker's status
// listener does: a web page an admin has open cannot read it by rebinding its name to 127.0.0.1.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GatewayMetricsListener } from '../config/schemas/gateway.js';
import type { Logger } from '../lib/log.js';
import type { GatewayMetrics } from './metrics.js';

/** The Host a loopback client sends: a loopback address or localhost, with any port. */
const LOOPBACK_HOST = /^(?:127(?:\.\d{1,3}){3}|\[::1\]|localhost)(?::\d{1,5})?$/i;

/** The Host header names this listener: loopback, or its own (admin network) address. */
export function hostAllowed(
  header: string | undefined,
  where: Pick<GatewayMetricsListener, 'host' | 'allowNonLoopback'>,
): boolean {
  if (header === undefined) return false;
  if (LOOPBACK_HOST.test(header)) return true;
  if (!where.allowNonLoopback) return false;
  const own = where.host.includes(':') ? `[${where.host}]` : where.host;
  const name = header.toLowerCase();
  return (
    name === own.toLowerCase() ||
    (name.startsWith(`${own.toLowerCase()}:`) && /^\d{1,5}$/.test(name.slice(own.length + 1)))
  );
}

export interface MetricsServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

export function startMetricsServer(
  where: GatewayMetricsListener,
  metrics: GatewayMetrics,
  log: Logger,
): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (!hostAllowed(req.headers.host, where)) {
      res.writeHead(421, { 'content-length': 0, connection: 'close' }).end();
      return;
    }
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
