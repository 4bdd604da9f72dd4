// Starts a gateway for a test (HTTP on an ephemeral loopback port, serving) and stops it after.
import { request, type IncomingHttpHeaders } from 'node:http';
import type { TestContext } from 'node:test';
import { validateConfig } from '../../config/load.js';
import { loadRoutes } from '../../config/routes.js';
import type { GatewayConfig } from '../../config/schemas/gateway.js';
import { startGateway, type Gateway } from '../../gateway/server.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import { exampleRoutesFile } from './files.js';
import { testIdempotencySecretFile } from './idempotency.js';
import { REDIS_HOST, REDIS_PORT } from './redis.js';

export interface TestGateway {
  readonly gateway: Gateway;
  readonly config: GatewayConfig;
  readonly url: string;
}

export async function startTestGateway(
  t: TestContext,
  options: {
    prefix: string;
    id?: string;
    redisPort?: number;
    overrides?: Record<string, unknown>;
    logger?: Logger;
  },
): Promise<TestGateway> {
  const config = validateConfig('gateway', 'test-gateway.json', {
    kind: 'gateway',
    id: options.id ?? 'gw1',
    routes: exampleRoutesFile,
    http: { host: '127.0.0.1', port: 0, mode: 'serve' },
    redis: { host: REDIS_HOST, port: options.redisPort ?? REDIS_PORT, prefix: options.prefix },
    replyTimeoutMs: 3000,
    idempotency: { secretFile: testIdempotencySecretFile() },
    ...options.overrides,
  });
  const gateway = await startGateway(config, loadRoutes(config.routes), options.logger ?? silentLogger());
  t.after(() => gateway.close());
  return { gateway, config, url: `http://127.0.0.1:${gateway.http!.port}` };
}

/** Resolves once the gateway reports its queue reachable. */
export async function untilReady(url: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const res = await fetch(`${url}/readyz`).catch(() => undefined);
    if (res?.status === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gateway at ${url} not ready within ${timeoutMs} ms`);
}

export interface RawAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** As it came on the wire (node:http decodes nothing). */
  readonly body: Buffer;
}

/** One plain-HTTP request to 127.0.0.1, the path sent exactly as given (unlike fetch). */
export function rawGet(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
