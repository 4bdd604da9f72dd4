// Brokers for tests: in-process, or as a `nonstop broker` child process that a test can kill.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startBroker, type Broker } from '../../broker/broker.js';
import { validateConfig } from '../../config/load.js';
import { loadRoutes } from '../../config/routes.js';
import type { BrokerConfig } from '../../config/schemas/broker.js';
import { DEFAULT_WORKER_USER } from '../../broker/redis-acl.js';
import { silentLogger } from '../../lib/log.js';
import { exampleRoutesFile } from './files.js';
import type { TestPki } from './pki.js';
import { REDIS_HOST, REDIS_PORT } from './redis.js';
import type { AclRedis } from './redis-server.js';

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
