// The broker's only listener: loopback HTTP with the tunnels' state, job counts, queue depths and
// the state of each gateway's cell (broker/cells.ts), as JSON (/status), Prometheus text
// (/metrics) and a page for a person (/, broker/status-page.ts). The schema refuses non-loopback
// hosts, and a request naming any other host is refused: a web page an admin has open cannot
// read it by rebinding its own name to 127.0.0.1.
import http from 'node:http';
import { listenAdmin, refuseForeignHost, type AdminListener } from '../lib/admin-listener.js';
import type { Logger } from '../lib/log.js';
import type { ChallengeRelayCounts } from './acme-relay.js';
import type { JobOutcome, QueueDepth } from './gateway-worker.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_CSS, STATUS_PAGE_HTML, STATUS_PAGE_JS } from './status-page.js';
import { TUNNEL_STATES, type TunnelStatus } from './tunnel.js';

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
}

export interface StatusSource {
  readonly brokerId: string;
  snapshot(): Promise<StatusSnapshot>;
}

export type StatusServer = AdminListener;

export function statusDocument(brokerId: string, s: StatusSnapshot): Record<string, unknown> {
  return { brokerId, tunnels: s.tunnels, jobs: s.jobs, queues: s.queues, cells: s.cells, acme: s.acme ?? {} };
}

const label = (value: string) => value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));

export function metricsText(s: StatusSnapshot): string {
  const lines: string[] = [
    '# HELP nonstop_tunnel_state Tunnel state per gateway: 1 for the current state, 0 otherwise.',
    '# TYPE nonstop_tunnel_state gauge',
  ];
  const tunnels = s.tunnels;
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
  for (const [id, counts] of Object.entries(s.jobs)) {
    for (const [outcome, n] of Object.entries(counts) as [JobOutcome, number][]) {
      lines.push(`nonstop_jobs_total{gateway="${label(id)}",outcome="${outcome}"} ${n}`);
    }
  }
  lines.push(
    "# HELP nonstop_queue_jobs Jobs in a gateway's queue, by state, as last sampled.",
    '# TYPE nonstop_queue_jobs gauge',
  );
  for (const [id, depth] of Object.entries(s.queues)) {
    for (const [state, n] of Object.entries(depth)) {
      lines.push(`nonstop_queue_jobs{gateway="${label(id)}",state="${state}"} ${n}`);
    }
  }
  lines.push(
    '# HELP nonstop_acme_answers_total ACME challenge answers gateways published: relayed, or refused (malformed, or for a name the gateway does not serve).',
    '# TYPE nonstop_acme_answers_total counter',
  );
  for (const [id, counts] of Object.entries(s.acme ?? {}))
    for (const outcome of ['relayed', 'refused'] as const)
      lines.push(
        `nonstop_acme_answers_total{gateway="${label(id)}",outcome="${outcome}"} ${counts[outcome]}`,
      );
  if (s.cells.length > 0) {
    lines.push(
      "# HELP nonstop_broker_cell_up Whether the process serving a gateway's queue and tunnel is running.",
      '# TYPE nonstop_broker_cell_up gauge',
      ...s.cells.map(
        (c) => `nonstop_broker_cell_up{gateway="${label(c.gatewayId)}"} ${c.state === 'running' ? 1 : 0}`,
      ),
      "# HELP nonstop_broker_cell_restarts_total Times a gateway's process was started again after it exited.",
      '# TYPE nonstop_broker_cell_restarts_total counter',
      ...s.cells.map(
        (c) => `nonstop_broker_cell_restarts_total{gateway="${label(c.gatewayId)}"} ${c.restarts}`,
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

export function startStatusServer(
  where: { host: string; port: number },
  source: StatusSource,
  log: Logger,
): Promise<StatusServer> {
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
      const body = metricsText(await source.snapshot());
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body);
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
