// What `nonstop demo` sends through the three-tier world, and how it reads each request's path
// back from the logs of the gateway, the brokers and the core.
import type { ClientAnswer, ThreeTier } from '../world/three-tier.js';
import type { HostProcess } from '../world/world.js';
import { summarize } from './local-samples.js';

export interface DemoSample {
  readonly label: string;
  readonly gateway: string;
  readonly https: boolean;
  readonly method: string;
  /** `:id` is replaced by the id of the note the first sample created. */
  readonly path: string;
  readonly body?: string;
  /** Request headers (a JSON body's content type is the default). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly expect: number;
  /** Where the request must stop: the core executes it, a broker refuses it, or the gateway answers. */
  readonly stopsAt: 'core' | 'broker' | 'gateway';
}

export const DEMO_SAMPLES: readonly DemoSample[] = [
  {
    label: 'create a note',
    gateway: 'gw1',
    https: false,
    method: 'POST',
    path: '/notes',
    body: '{"title":"Buy milk","tags":["errands"],"priority":"high"}',
    expect: 201,
    stopsAt: 'core',
  },
  {
    label: 'read it back',
    gateway: 'gw1',
    https: false,
    method: 'GET',
    path: '/notes/:id',
    expect: 200,
    stopsAt: 'core',
  },
  {
    label: 'list notes through the other gateway',
    gateway: 'gw2',
    https: true,
    method: 'GET',
    path: '/notes?limit=5',
    expect: 200,
    stopsAt: 'core',
  },
  {
    label: 'invalid body (empty title, unknown field)',
    gateway: 'gw2',
    https: true,
    method: 'POST',
    path: '/notes',
    body: '{"title":"","admin":true}',
    expect: 400,
    stopsAt: 'broker',
  },
  {
    label: 'invalid query (limit too large)',
    gateway: 'gw1',
    https: false,
    method: 'GET',
    path: '/notes?limit=5000',
    expect: 400,
    stopsAt: 'broker',
  },
  {
    label: 'unknown route',
    gateway: 'gw2',
    https: true,
    method: 'GET',
    path: '/admin',
    expect: 404,
    stopsAt: 'gateway',
  },
  {
    label: 'delete the note',
    gateway: 'gw2',
    https: true,
    method: 'DELETE',
    path: '/notes/:id',
    expect: 204,
    stopsAt: 'core',
  },
  {
    label: 'read it again',
    gateway: 'gw1',
    https: false,
    method: 'GET',
    path: '/notes/:id',
    expect: 404,
    stopsAt: 'core',
  },
  {
    label: 'sign the guestbook: a form, to the Python site the core calls as its upstream',
    gateway: 'gw1',
    https: true,
    method: 'POST',
    path: '/entries',
    body: 'name=Demo&message=Signed+through+nonstop',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    expect: 303,
    stopsAt: 'core',
  },
  {
    label: 'its HTML page through the other gateway',
    gateway: 'gw2',
    https: true,
    method: 'GET',
    path: '/',
    expect: 200,
    stopsAt: 'core',
  },
  {
    label: "its stylesheet, from the gateway's static folder",
    gateway: 'gw2',
    https: true,
    method: 'GET',
    path: '/assets/guestbook.css',
    expect: 200,
    stopsAt: 'gateway',
  },
];

export interface Trace {
  readonly lines: readonly string[];
  /** The tier where the request stopped, read from the logs. */
  readonly stoppedAt: 'core' | 'broker' | 'gateway' | 'unknown';
}

/** One line per hop: the gateway's, the broker's and the core's log line for this request. */
export async function traceRequest(tt: ThreeTier, gatewayId: string, answer: ClientAnswer): Promise<Trace> {
  const requestId = answer.headers['x-request-id'];
  const gateway = tt.gateway(gatewayId);
  if (requestId === undefined) {
    return {
      lines: [`${gatewayId}: answered it on its own (${answer.status}); nothing was queued`],
      stoppedAt: 'gateway',
    };
  }
  // Logs arrive asynchronously: every queued request is logged by its gateway and by a broker.
  const find = (p: HostProcess) => p.jsonLines().filter((l) => l.requestId === requestId);
  let brokerLines: { id: string; line: Record<string, unknown> }[] = [];
  let gatewayLines: Record<string, unknown>[] = [];
  for (let i = 0; i < 40; i++) {
    gatewayLines = find(gateway.gateway);
    brokerLines = tt.brokers.flatMap((b) => find(b.process).map((line) => ({ id: b.id, line })));
    if (gatewayLines.length > 0 && brokerLines.length > 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const coreLines = find(tt.core.process);
  const lines = [
    ...gatewayLines.map(
      (l) => `${gatewayId}: ${summarize(l, ['status', 'durationMs'])}, queued as ${requestId}`,
    ),
    ...brokerLines.map(
      ({ id, line }) => `${id}: ${summarize(line, ['status', 'problems', 'replayed', 'durationMs'])}`,
    ),
    ...(brokerLines.length === 0 ? ['brokers: none took it'] : []),
    ...coreLines.map((l) => `core: ${summarize(l, ['route', 'appStatus', 'durationMs'])}`),
    ...(coreLines.length === 0 ? ['core: never saw it'] : []),
  ];
  const stoppedAt = coreLines.length > 0 ? 'core' : brokerLines.length > 0 ? 'broker' : 'unknown';
  return { lines, stoppedAt };
}
