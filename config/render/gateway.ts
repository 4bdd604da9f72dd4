// A gateway's gateway.json from the facts of its deployment: `nonstop render gateway` (Ansible)
// and the test world both build it here, so every setting that guards the gateway is decided
// once: dual-stack listeners, HTTPS from the role's TLS files, its own Redis user through each
// broker's tunnel on loopback, the deployment's idempotency secret.
import { join } from 'node:path';
import { gatewayUser } from '../redis-users.js';
import type { CodingLevels, CompressionConfig, GatewayConfig } from '../schemas/gateway.js';
import { checkedDocument, optional } from './document.js';

/** `::` takes IPv6 and IPv4-mapped IPv4: the gateway answers on both families. */
export const DUAL_STACK = '::';

export interface GatewayInput {
  readonly id: string;
  /** The role's folder: routes.json, tls/gateway.crt, tls/gateway.key, redis-password, idempotency-secret. */
  readonly configDir: string;
  /** Each broker's loopback port on this gateway (its tunnel's remote forward), in order. */
  readonly tunnels: readonly { readonly broker: string; readonly port: number }[];
  /** Default `::` (dual-stack). */
  readonly listenHost?: string;
  readonly httpPort?: number;
  readonly httpsPort?: number;
  /** Plain HTTP: redirect to HTTPS (the default), serve, or off. */
  readonly httpMode?: GatewayConfig['http']['mode'];
  readonly redisPrefix?: string;
  readonly limits?: Partial<GatewayConfig['limits']>;
  readonly replyTimeoutMs?: number;
  /** Folders the gateway serves itself (the Ansible role copies them to /srv/nonstop/static/). */
  readonly static?: readonly StaticMountInput[];
  /** Response compression, as gateway.json's `compression` (the daemon fills what is left out). */
  readonly compression?: CompressionInput;
}

export interface CompressionInput {
  readonly enabled?: boolean;
  readonly minBytes?: number;
  readonly dynamic?: Partial<CodingLevels>;
  readonly static?: Partial<CompressionConfig['static']>;
}

export interface StaticMountInput {
  readonly path: string;
  readonly dir: string;
  readonly maxAgeSeconds?: number;
  readonly index?: boolean;
}

/** Where the gateway role puts each file under its configDir. */
export function gatewayFiles(configDir: string) {
  return {
    routes: join(configDir, 'routes.json'),
    cert: join(configDir, 'tls', 'gateway.crt'),
    key: join(configDir, 'tls', 'gateway.key'),
    redisPassword: join(configDir, 'redis-password'),
    idempotencySecret: join(configDir, 'idempotency-secret'),
  } as const;
}

export function gatewayDocument(input: GatewayInput) {
  const files = gatewayFiles(input.configDir);
  const host = input.listenHost ?? DUAL_STACK;
  return checkedDocument('gateway', `gateway.json of ${input.id}`, {
    kind: 'gateway',
    id: input.id,
    routes: files.routes,
    http: { host, port: input.httpPort ?? 80, mode: input.httpMode ?? 'redirect' },
    https: { host, port: input.httpsPort ?? 443, cert: files.cert, key: files.key },
    redis: {
      username: gatewayUser(input.id),
      passwordFile: files.redisPassword,
      ...optional('prefix', input.redisPrefix),
      // The tunnels listen on the gateway's loopback only (sshd's permitlisten="127.0.0.1:PORT").
      endpoints: input.tunnels.map((t) => ({ host: '127.0.0.1', port: t.port })),
    },
    ...optional('limits', input.limits),
    ...optional('replyTimeoutMs', input.replyTimeoutMs),
    ...optional('static', input.static),
    ...optional('compression', input.compression),
    // The same secret on every gateway: a client's Idempotency-Key maps to one request id.
    idempotency: { secretFile: files.idempotencySecret },
  } as const);
}

export type GatewayDocument = ReturnType<typeof gatewayDocument>;
