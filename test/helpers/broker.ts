// Brokers for tests: in-process, or as a `nonstop broker` child process that a test can kill.
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { fileURLToPath } from 'node:url';
import { startBroker, type Broker } from '../../broker/broker.js';
import { validateConfig } from '../../config/load.js';
import { loadRoutes } from '../../config/routes.js';
import type { BrokerConfig } from '../../config/schemas/broker.js';
import { DEFAULT_WORKER_USER } from '../../broker/redis-acl.js';
import { queueName } from '../../lib/envelope.js';
import { silentLogger } from '../../lib/log.js';
import { exampleRoutesFile } from './files.js';
import type { TestPki } from './pki.js';
import { REDIS_HOST, REDIS_PORT } from './redis.js';
import type { AclRedis } from './redis-server.js';
import { finished, startCli, waitForLogLine, type Finished } from './cli.js';
import { tempDir, writeJson } from './files.js';

export function brokerConfigDoc(
  pki: TestPki,
  options: {
    prefix: string;
    corePort: number;
    id?: string;
    gateways?: string[];
    extra?: Record<string, unknown>;
  },
): Record<string, unknown> {
  const id = options.id ?? 'b1';
  const certs = pki.brokers[id];
  if (certs === undefined) throw new Error(`the test PKI has no broker "${id}"`);
  return {
    kind: 'broker',
    id,
    routes: exampleRoutesFile,
    logLevel: 'silent',
    redis: { host: REDIS_HOST, port: REDIS_PORT, prefix: options.prefix },
    // Test gateways wait up to 20 s (replyTimeoutMs overrides); the broker is told the longest
    // so that no test's real request is out of its bounds. Bound tests set their own.
    gateways: (options.gateways ?? ['gw1']).map((g) => ({ id: g, replyTimeoutMs: 60_000 })),
    core: {
      url: `https://127.0.0.1:${options.corePort}`,
      ca: pki.ca.cert,
      cert: certs.cert,
      key: certs.key,
      serverName: 'core',
      attemptTimeoutMs: 1000,
    },
    ...options.extra,
  };
}

/**
 * A broker whose worker logs into `acl`'s private Redis as the ACL's worker user, with short
 * lock and stalled intervals (an attack test waits on them); `extra` is laid on top.
 */
export function aclBrokerDoc(
  pki: TestPki,
  acl: AclRedis,
  options: { prefix: string; corePort: number; gateways: string[]; extra?: Record<string, unknown> },
): Record<string, unknown> {
  return brokerConfigDoc(pki, {
    prefix: options.prefix,
    corePort: options.corePort,
    gateways: options.gateways,
    extra: {
      redis: {
        host: '127.0.0.1',
        port: acl.redis.port,
        prefix: options.prefix,
        username: DEFAULT_WORKER_USER,
        passwordFile: acl.acl.passwordFiles[DEFAULT_WORKER_USER],
      },
      lockDurationMs: 1000,
      stalledIntervalMs: 500,
      ...options.extra,
    },
  });
}

export function startTestBroker(t: TestContext, doc: Record<string, unknown>): Broker {
  const config: BrokerConfig = validateConfig('broker', 'test-broker.json', doc);
  const broker = startBroker(config, loadRoutes(config.routes), silentLogger());
  t.after(() => broker.close());
  return broker;
}

/**
 * Waits until a worker of `prefix`'s queue for `gatewayId` is connected to `redis` (BullMQ
 * names its connections; CLIENT LIST shows them): a broker in a process of its own is slower to
 * start than the gateway, the more so on a loaded machine.
 */
export async function untilWorker(
  redis: Redis,
  prefix: string,
  gatewayId = 'gw1',
  timeoutMs = 30_000,
): Promise<void> {
  const queue = new Queue(queueName(gatewayId), { connection: redis, prefix, skipVersionCheck: true });
  try {
    for (const deadline = Date.now() + timeoutMs; (await queue.getWorkers()).length === 0;) {
      if (Date.now() > deadline) throw new Error(`no worker of ${gatewayId}'s queue within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await queue.close();
  }
}

const CLI = fileURLToPath(new URL('../../cli/index.js', import.meta.url));

/** A broker in its own process (killed after the test if still running). */
export function spawnBroker(t: TestContext, dir: string, doc: Record<string, unknown>): ChildProcess {
  const file = join(dir, `broker-${String(doc.id)}.json`);
  writeFileSync(file, JSON.stringify(doc));
  const child = spawn(process.execPath, [CLI, 'broker', '--config', file], { stdio: 'ignore' });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

export interface CliBroker {
  readonly child: ChildProcessWithoutNullStreams;
  /** Resolves when it has exited. */
  readonly done: Promise<Finished>;
  /** Its status endpoint's address (127.0.0.1). */
  readonly address: { readonly address: string; readonly port: number };
  readonly base: string;
}

/**
 * `nonstop broker` (a cell per gateway) over the test's Redis prefix for `gateways`, with a
 * status endpoint on an ephemeral port; killed after the test if still running.
 */
export async function startCliBroker(
  t: TestContext,
  pki: TestPki,
  options: { prefix: string; gateways: string[]; extra?: Record<string, unknown> },
): Promise<CliBroker> {
  const file = writeJson(
    tempDir(t),
    'broker.json',
    brokerConfigDoc(pki, {
      prefix: options.prefix,
      corePort: 1,
      gateways: options.gateways,
      extra: { logLevel: 'info', status: { port: 0 }, ...options.extra },
    }),
  );
  const child = startCli(['broker', '--config', file]);
  child.stdin.end();
  t.after(() => child.kill('SIGKILL'));
  const done = finished(child);
  const line = await waitForLogLine(child, (l) => l.msg === 'status endpoint listening');
  const address = line.address as { address: string; port: number };
  return { child, done, address, base: `http://127.0.0.1:${address.port}` };
}
