// The broker's only listener: loopback HTTP with the tunnels' state and job counts, as JSON
// (/status) and Prometheus text (/metrics). The schema refuses non-loopback hosts.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../lib/log.js';
import type { GatewayWorker, JobOutcome } from './gateway-worker.js';
import { TUNNEL_STATES, type TunnelStatus } from './tunnel.js';

export interface StatusSource {
  readonly brokerId: string;
  tunnels(): TunnelStatus[];
  readonly workers: ReadonlyMap<string, Pick<GatewayWorker, 'counts'>>;
}

export interface StatusServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

export function statusDocument(source: StatusSource): Record<string, unknown> {
  return {
    brokerId: source.brokerId,
    tunnels: source.tunnels(),
    jobs: Object.fromEntries([...source.workers].map(([id, w]) => [id, { ...w.counts }])),
  };
}

const label = (value: string) => value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));

export function metricsText(source: StatusSource): string {
  const lines: string[] = [
    '# HELP nonstop_tunnel_state Tunnel state per gateway: 1 for the current state, 0 otherwise.',
    '# TYPE nonstop_tunnel_state gauge',
  ];
  const tunnels = source.tunnels();
  for (const t of tunnels) {
    for (const s of TUNNEL_STATES) {
      lines.push(
        `nonstop_tunnel_state{gateway="${label(t.gatewayId)}",state="${s}"} ${t.state === s ? 1 : 0}`,
      );
    }
  }
  lines.push(
    '# HELP nonstop_tunnel_reconnects_total Tunnel connection attempts after the first.',
    '# TYPE nonstop_tunnel_reconnects_total counter',
    ...tunnels.map((t) => `nonstop_tunnel_reconnects_total{gateway="${label(t.gatewayId)}"} ${t.reconnects}`),
    '# HELP nonstop_tunnel_forwarded_total Connections carried from the gateway to Redis.',
    '# TYPE nonstop_tunnel_forwarded_total counter',
    ...tunnels.map((t) => `nonstop_tunnel_forwarded_total{gateway="${label(t.gatewayId)}"} ${t.forwarded}`),
    '# HELP nonstop_tunnel_throttled_total Times reading from a gateway paused, over its budget of channel opens or SSH messages.',
    '# TYPE nonstop_tunnel_throttled_total counter',
    ...tunnels.map((t) => `nonstop_tunnel_throttled_total{gateway="${label(t.gatewayId)}"} ${t.throttled}`),
    '# HELP nonstop_tunnel_paused_seconds_total Time reading from a gateway was paused, over its budget.',
    '# TYPE nonstop_tunnel_paused_seconds_total counter',
    ...tunnels.map(
      (t) =>
        `nonstop_tunnel_paused_seconds_total{gateway="${label(t.gatewayId)}"} ${(t.pausedMs / 1000).toFixed(3)}`,
    ),
    '# HELP nonstop_jobs_total Jobs this broker processed, by outcome.',
    '# TYPE nonstop_jobs_total counter',
  );
  for (const [id, w] of source.workers) {
    for (const [outcome, n] of Object.entries(w.counts) as [JobOutcome, number][]) {
      lines.push(`nonstop_jobs_total{gateway="${label(id)}",outcome="${outcome}"} ${n}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export function startStatusServer(
  where: { host: string; port: number },
  source: StatusSource,
  log: Logger,
): Promise<StatusServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET', 'content-length': 0 }).end();
    } else if (path === '/status') {
      const body = JSON.stringify(statusDocument(source));
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    } else if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metricsText(source));
    } else {
      res.writeHead(404, { 'content-length': 0 }).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.port, where.host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      log.info({ address }, 'status endpoint listening');
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
