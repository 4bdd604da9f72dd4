// The broker's only listener: loopback HTTP with the tunnels' state, job counts, queue depths and
// the state of each gateway's cell (broker/cells.ts), as JSON (/status), Prometheus text
// (/metrics, broker/metrics.ts) and a page for a person (/, broker/status-page.ts). The schema refuses non-loopback
// hosts, and a request naming any other host is refused: a web page an admin has open cannot
// read it by rebinding its own name to 127.0.0.1.
import http from 'node:http';
import { listenAdmin, refuseForeignHost, type AdminListener } from '../lib/admin-listener.js';
import type { Logger } from '../lib/log.js';
import type { ChallengeRelayCounts } from './acme-relay.js';
import type { JobOutcome, QueueDepth } from './gateway-worker.js';
import { BrokerStatusMetrics, type WorkMetricsJson } from './metrics.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_CSS, STATUS_PAGE_HTML, STATUS_PAGE_JS } from './status-page.js';
import type { TunnelStatus } from './tunnel.js';

/** The process serving one gateway, as its broker sees it. */
export interface CellStatus {
  readonly gatewayId: string;
  /** Its process id; null while it is down. */
  readonly pid: number | null;
  /** starting: forked, its worker and tunnel not yet set up. */
  readonly state: 'starting' | 'running' | 'restarting' | 'stopped';
  /** When it entered this state (ISO 8601). */
  readonly since: string;
  /** Times it was started again after it exited. */
  readonly restarts: number;
  /** How it last exited ("code 1", "SIGKILL", a heap limit), or null. */
  readonly lastExit: string | null;
}

/** What the status endpoint shows, gathered when asked. */
export interface StatusSnapshot {
  readonly tunnels: readonly TunnelStatus[];
  readonly jobs: Readonly<Record<string, Readonly<Record<JobOutcome, number>>>>;
  /** Each gateway's queue, as its worker last sampled it (every 2 s). */
  readonly queues: Readonly<Record<string, QueueDepth>>;
  /** One per gateway when the broker runs a process per gateway; empty when it runs them in one. */
  readonly cells: readonly CellStatus[];
  /** Each gateway's ACME challenge answers relayed and refused (broker/acme-relay.ts). */
  readonly acme?: Readonly<Record<string, Readonly<ChallengeRelayCounts>>>;
  /**
   * The work metrics (broker/metrics.ts) of each process that works queues: the broker's own, or
   * one per cell. Shown on /metrics only.
   */
  readonly work?: readonly WorkMetricsJson[];
}

export interface StatusSource {
  readonly brokerId: string;
  snapshot(): Promise<StatusSnapshot>;
}

export type StatusServer = AdminListener;

export function statusDocument(brokerId: string, s: StatusSnapshot): Record<string, unknown> {
  return { brokerId, tunnels: s.tunnels, jobs: s.jobs, queues: s.queues, cells: s.cells, acme: s.acme ?? {} };
}

export function startStatusServer(
  where: { host: string; port: number },
  source: StatusSource,
  log: Logger,
  options: { readonly processMetrics?: boolean } = {},
): Promise<StatusServer> {
  const metrics = new BrokerStatusMetrics(options);
  const page = (res: http.ServerResponse, type: string, body: string) =>
    res
      .writeHead(200, {
        'content-type': type,
        'content-security-policy': STATUS_PAGE_CSP,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'cache-control': 'no-store',
      })
      .end(body);
  const answer = async (path: string | undefined, res: http.ServerResponse) => {
    if (path === '/') page(res, 'text/html; charset=utf-8', STATUS_PAGE_HTML);
    else if (path === '/status.js') page(res, 'text/javascript; charset=utf-8', STATUS_PAGE_JS);
    else if (path === '/status.css') page(res, 'text/css; charset=utf-8', STATUS_PAGE_CSS);
    else if (path === '/status') {
      const body = JSON.stringify(statusDocument(source.brokerId, await source.snapshot()));
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    } else if (path === '/metrics') {
      const body = await metrics.text(await source.snapshot());
      res.writeHead(200, { 'content-type': metrics.contentType }).end(body);
    } else {
      res.writeHead(404, { 'content-length': 0 }).end();
    }
  };
  const server = http.createServer((req, res) => {
    if (refuseForeignHost(req, res)) return;
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET', 'content-length': 0 }).end();
      return;
    }
    answer((req.url ?? '/').split('?')[0], res).catch((err: unknown) => {
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'status snapshot failed');
      if (!res.headersSent) res.writeHead(500, { 'content-length': 0 });
      res.end();
    });
  });
  return listenAdmin(server, where, log, 'status endpoint');
}
