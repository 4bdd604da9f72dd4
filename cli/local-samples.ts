// Sample requests `nonstop local` sends through the gateway, and how each one's path through
// the tiers is read back from the three roles' logs.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { logLinesFor, type LocalWorld, type Role } from './local-world.js';

export interface Sample {
  readonly label: string;
  readonly method: string;
  /** `:id` is replaced by the id of the note the first sample created. */
  readonly path: string;
  readonly body?: string;
  readonly expect: number;
}

export const SAMPLES: readonly Sample[] = [
  {
    label: 'create a note',
    method: 'POST',
    path: '/notes',
    body: '{"title":"Buy milk","tags":["errands"],"priority":"high"}',
    expect: 201,
  },
  { label: 'read it back', method: 'GET', path: '/notes/:id', expect: 200 },
  { label: 'list notes', method: 'GET', path: '/notes?limit=5', expect: 200 },
  {
    label: 'invalid body (empty title, unknown field)',
    method: 'POST',
    path: '/notes',
    body: '{"title":"","admin":true}',
    expect: 400,
  },
  { label: 'invalid query (limit too large)', method: 'GET', path: '/notes?limit=5000', expect: 400 },
  { label: 'unknown route', method: 'GET', path: '/admin', expect: 404 },
  { label: 'delete the note', method: 'DELETE', path: '/notes/:id', expect: 204 },
  { label: 'read it again', method: 'GET', path: '/notes/:id', expect: 404 },
];

export interface Answer {
  readonly status: number;
  readonly body: string;
  readonly requestId: string | undefined;
}

export function send(world: LocalWorld, method: string, path: string, body?: string): Promise<Answer> {
  const url = new URL(path, world.gatewayUrl);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca: readFileSync(world.pki.publicCa.cert),
        servername: 'localhost',
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        timeout: 15_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          const id = res.headers['x-request-id'];
          resolve({
            status: res.statusCode ?? 0,
            body: text,
            requestId: typeof id === 'string' ? id : undefined,
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer from the gateway in 15 s')));
    req.on('error', reject);
    req.end(body);
  });
}

// The core's own status is that of the broker↔core exchange, not the client's answer.
const keysFor = (role: Role) =>
  role === 'core' ? ['replayed', 'durationMs'] : ['status', 'problems', 'replayed', 'durationMs'];

/** One line per tier saying what it did with a request, read from its log. */
export async function hops(world: LocalWorld, requestId: string | undefined): Promise<string[]> {
  if (requestId === undefined) return ['gateway: answered on its own; nothing was queued'];
  // Logs are written asynchronously. Every queued request is logged by the gateway and by a
  // broker, so wait for both; the core's line, if any, was written before the broker's.
  const read = () => ({
    gateway: logLinesFor(world.logs.gateway, requestId),
    broker: logLinesFor(world.logs.broker, requestId),
    core: logLinesFor(world.logs.core, requestId),
  });
  let lines = read();
  for (let i = 0; i < 40 && (lines.gateway.length === 0 || lines.broker.length === 0); i++) {
    await new Promise((r) => setTimeout(r, 50));
    lines = read();
  }
  const describe = (role: Role, fallback: string) =>
    lines[role].map((l) => `${role}: ${summarize(l, keysFor(role))}`).join('; ') || `${role}: ${fallback}`;
  return [
    describe('gateway', 'no log line'),
    describe('broker', 'never saw it'),
    describe('core', 'never saw it'),
  ];
}

/** A log line as `msg key=value …`, for the keys given. */
export function summarize(line: Record<string, unknown>, keys: readonly string[]): string {
  const parts = [typeof line.msg === 'string' ? line.msg : ''];
  for (const key of keys) {
    const value = line[key];
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
      parts.push(`${key}=${value}`);
  }
  return parts.join(' ');
}
