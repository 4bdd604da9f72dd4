// The local three-tier world behind `nonstop local`: keys, configs and the three roles as
// separate processes on loopback, each logging JSON lines to its own file.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeIdempotencySecret } from '../gateway/idempotency-secret.js';
import { generatePki, type Pki } from '../lib/pki.js';
import { freePort } from '../lib/free-port.js';

export type Role = 'core' | 'broker' | 'gateway';

export interface LocalWorld {
  readonly dir: string;
  readonly pki: Pki;
  readonly gatewayUrl: string;
  readonly httpUrl: string;
  readonly coreUrl: string;
  readonly logs: Readonly<Record<Role, string>>;
  readonly processes: Readonly<Record<Role, ChildProcess>>;
  stop(): Promise<void>;
}

const CLI = fileURLToPath(new URL('./index.js', import.meta.url));
const EXAMPLE_ROUTES = fileURLToPath(new URL('../../config/examples/routes.json', import.meta.url));

export interface LocalWorldOptions {
  /** Overrides of the gateway's `limits` (a benchmark from one address lifts the rate limit). */
  readonly gatewayLimits?: Record<string, number>;
  /** The core's `database` section; default: PGlite with its data in DIR/data. */
  readonly database?: Record<string, unknown>;
}

export async function buildLocalWorld(
  dirArg: string,
  redis: { host: string; port: number },
  options: LocalWorldOptions = {},
): Promise<LocalWorld> {
  const dir = resolve(dirArg);
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const pki = await generatePki({ dir: join(dir, 'pki'), brokers: ['broker1'], gateways: ['gw1'] });
  const idempotencySecret = join(dir, 'pki', 'idempotency.secret');
  writeIdempotencySecret(idempotencySecret, { keep: true });
  const [corePort, httpsPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const prefix = 'nonstop-local';

  writeFileSync(join(dir, 'routes.json'), readFileSync(EXAMPLE_ROUTES));
  const configs: Record<Role, unknown> = {
    core: {
      kind: 'core',
      routes: 'routes.json',
      listen: { host: '127.0.0.1', port: corePort },
      tls: { ca: pki.ca.cert, cert: pki.core.cert, key: pki.core.key },
      database: options.database ?? { dataDir: join(dir, 'data') },
      application: 'notes',
    },
    broker: {
      kind: 'broker',
      id: 'broker1',
      routes: 'routes.json',
      redis: { ...redis, prefix },
      gateways: [{ id: 'gw1' }],
      core: {
        url: `https://127.0.0.1:${corePort}`,
        ca: pki.ca.cert,
        cert: pki.brokers.broker1!.cert,
        key: pki.brokers.broker1!.key,
        serverName: 'core',
      },
    },
    gateway: {
      kind: 'gateway',
      id: 'gw1',
      routes: 'routes.json',
      http: { host: '127.0.0.1', port: httpPort, mode: 'redirect' },
      https: { host: '127.0.0.1', port: httpsPort, cert: pki.gateways.gw1!.cert, key: pki.gateways.gw1!.key },
      redis: { ...redis, prefix },
      ...(options.gatewayLimits === undefined ? {} : { limits: options.gatewayLimits }),
      idempotency: { secretFile: idempotencySecret },
    },
  };

  const logs = {} as Record<Role, string>;
  const processes = {} as Record<Role, ChildProcess>;
  for (const role of ['core', 'broker', 'gateway'] as const) {
    const file = join(dir, `${role}.json`);
    writeFileSync(file, JSON.stringify(configs[role], null, 2));
    logs[role] = join(dir, 'logs', `${role}.log`);
    const out = createWriteStream(logs[role], { flags: 'w' });
    const child = spawn(process.execPath, [CLI, role, '--config', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.pipe(out);
    child.stderr.pipe(out);
    processes[role] = child;
  }

  return {
    dir,
    pki,
    gatewayUrl: `https://127.0.0.1:${httpsPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    coreUrl: `https://127.0.0.1:${corePort}`,
    logs,
    processes,
    async stop() {
      // Gateway first (stop taking requests), then the broker finishes in-flight work, then the core.
      for (const role of ['gateway', 'broker', 'core'] as const) await stopProcess(processes[role]);
    },
  };
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', () => {
      clearTimeout(timer);
      res();
    });
    child.kill('SIGTERM');
  });
}

/** Log lines (parsed JSON objects) of a role that mention a request id. */
export function logLinesFor(file: string, requestId: string): Record<string, unknown>[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes(requestId)) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // Not a JSON line (a crash trace); ignore here, it stays in the file.
    }
  }
  return out;
}
