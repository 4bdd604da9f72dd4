// `nonstop status`: what the brokers' status endpoints say, as one table for a terminal: each
// gateway's cell, tunnel, queue and job counts, and the errors behind anything that is down.
// The same document drives the page the endpoint serves on `/`.
import { loadConfig } from '../config/load.js';
import type { CellStatus } from '../broker/status-server.js';
import type { TunnelStatus } from '../broker/tunnel.js';
import { errors } from '../lib/errors.js';
import { parseCommandArgs, UsageError, type Command } from './command.js';

/** The part of a broker's /status document this command reads. */
export interface BrokerStatusDocument {
  readonly brokerId: string;
  readonly tunnels: readonly TunnelStatus[];
  readonly jobs: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly queues?: Readonly<Record<string, { waiting: number; active: number; delayed: number }>>;
  readonly cells: readonly CellStatus[];
}

const TIMEOUT_MS = 3000;

export const statusCommand: Command = {
  name: 'status',
  help: `Usage: nonstop status [-c BROKER.json ...] [--url URL ...] [--json]

Reads each broker's loopback status endpoint and prints, per broker and gateway: the
gateway's cell, its tunnel (and since when), the queue's waiting, active and delayed
jobs, and the jobs answered, invalid, tampered and expired; then the errors behind
anything that is down. Exits 0 when every tunnel is up and every cell running, 1
otherwise or when an endpoint cannot be read.

  -c, --config FILE   a broker config file; its "status" section says where to ask
      --url URL       a status endpoint (e.g. http://127.0.0.1:9100), instead of a config
      --json          print the documents as read, one JSON line each
  -h, --help          show this help

The endpoint also serves this as a page that refreshes itself: open http://127.0.0.1:PORT/
in a browser on the broker (or through an SSH local forward).`,
  async run(argv) {
    const { values } = parseCommandArgs(argv, {
      config: { type: 'string', short: 'c', multiple: true },
      url: { type: 'string', multiple: true },
      json: { type: 'boolean' },
    });
    if (values.help) {
      console.log(this.help);
      return 0;
    }
    const urls = [...(values.url ?? []).map(checkedUrl), ...(values.config ?? []).map(urlOfConfig)];
    if (urls.length === 0)
      throw new UsageError('give a broker config (-c FILE) or a status endpoint (--url URL)');
    let healthy = true;
    for (const url of urls) {
      let doc: BrokerStatusDocument;
      try {
        doc = await readStatus(url);
      } catch (err) {
        console.error(`${url}: cannot read its status: ${(err as Error).message}`);
        healthy = false;
        continue;
      }
      if (values.json) console.log(JSON.stringify(doc));
      else console.log(formatStatus(doc, url));
      healthy &&= isHealthy(doc);
    }
    return healthy ? 0 : 1;
  },
};

function checkedUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--url: "${value}" is not a URL`);
  }
  if (url.protocol !== 'http:')
    throw new UsageError(`--url: "${value}": a status endpoint is plain http on loopback`);
  return url.origin;
}

function urlOfConfig(file: string): string {
  const config = loadConfig('broker', file);
  if (config.status === undefined) {
    throw errors.CONFIG_INVALID(`${file}: no "status" section, so the broker serves no status endpoint`);
  }
  const host = config.status.host.includes(':') ? `[${config.status.host}]` : config.status.host;
  return `http://${host}:${config.status.port}`;
}

async function readStatus(url: string): Promise<BrokerStatusDocument> {
  const res = await fetch(`${url}/status`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const doc: unknown = await res.json();
  if (!isStatusDocument(doc)) throw new Error('the answer is not a broker status document');
  return doc;
}

function isStatusDocument(doc: unknown): doc is BrokerStatusDocument {
  if (typeof doc !== 'object' || doc === null) return false;
  const d = doc as Record<string, unknown>;
  return (
    typeof d.brokerId === 'string' &&
    Array.isArray(d.tunnels) &&
    Array.isArray(d.cells) &&
    typeof d.jobs === 'object' &&
    d.jobs !== null
  );
}

/** Every tunnel up and every cell running. */
export function isHealthy(doc: BrokerStatusDocument): boolean {
  return doc.tunnels.every((t) => t.state === 'up') && doc.cells.every((c) => c.state === 'running');
}

/** The document as a table (one row per gateway) and the errors behind what is not up. */
export function formatStatus(doc: BrokerStatusDocument, url: string, now = Date.now()): string {
  const ids = [
    ...new Set([
      ...doc.cells.map((c) => c.gatewayId),
      ...doc.tunnels.map((t) => t.gatewayId),
      ...Object.keys(doc.jobs),
    ]),
  ].sort();
  const header = [
    'gateway',
    'cell',
    'tunnel',
    'for',
    'waiting',
    'active',
    'delayed',
    'answered',
    'invalid',
    'tampered',
    'expired',
  ];
  const rows = ids.map((id) => {
    const cell = doc.cells.find((c) => c.gatewayId === id);
    const tunnel = doc.tunnels.find((t) => t.gatewayId === id);
    const queue = doc.queues?.[id];
    const jobs = doc.jobs[id] ?? {};
    return [
      id,
      cell === undefined
        ? 'in process'
        : `${cell.state}${cell.restarts > 0 ? ` (${cell.restarts} restarts)` : ''}`,
      tunnel === undefined ? 'direct' : `${tunnel.state}${tunnel.paused ? ', paused' : ''}`,
      tunnel === undefined ? '' : ago(Date.parse(tunnel.since), now),
      String(queue?.waiting ?? '?'),
      String(queue?.active ?? '?'),
      String(queue?.delayed ?? '?'),
      ...['answered', 'invalid', 'tampered', 'expired'].map((k) => String(jobs[k] ?? 0)),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < 4 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const problems = [
    ...doc.tunnels
      .filter((t) => t.state !== 'up' && t.lastError !== null)
      .map((t) => `  ${t.gatewayId}: tunnel ${t.state}: ${t.lastError}`),
    ...doc.cells
      .filter((c) => c.state !== 'running' && c.lastExit !== null)
      .map((c) => `  ${c.gatewayId}: cell ${c.state}, last exit ${c.lastExit}`),
  ];
  return [
    `broker ${doc.brokerId} (${url}): ${isHealthy(doc) ? 'all up' : 'NOT all up'}`,
    `  ${line(header)}`,
    ...rows.map((r) => `  ${line(r)}`),
    ...(problems.length > 0 ? ['errors:', ...problems] : []),
  ].join('\n');
}

function ago(then: number, now: number): string {
  if (!Number.isFinite(then)) return '?';
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}
