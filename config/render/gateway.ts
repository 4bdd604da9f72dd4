// A gateway's gateway.json from the facts of its deployment: `nonstop render gateway` (Ansible)
// and the test world both build it here, so every setting that guards the gateway is decided
// once: dual-stack listeners, HTTPS from the role's TLS files, its own Redis user through each
// broker's tunnel on loopback, the deployment's idempotency secret.
import { join } from 'node:path';
import { checkClientAddress } from '../client-address.js';
import { gatewayUser } from '../redis-users.js';
import type {
  AcmeConfig,
  CodingLevels,
  CompressionConfig,
  GatewayConfig,
  Http2Config,
} from '../schemas/gateway.js';
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
  /** A load balancer in front sends a PROXY protocol header on port 80 / 443 (off by default). */
  readonly httpProxyProtocol?: boolean;
  readonly httpsProxyProtocol?: boolean;
  /** The proxies in front (`trustedProxies`) and the header they name clients in. */
  readonly clientAddress?: Partial<GatewayConfig['clientAddress']>;
  /** Folders the gateway serves itself (the Ansible role copies them to /srv/nonstop/static/). */
  readonly static?: readonly StaticMountInput[];
  /** The metrics listener's port on loopback (default 9464); null: none. */
  readonly metricsPort?: number | null;
  /** The certificate from an ACME CA instead of the role's TLS files (Ansible: gateway_acme). */
  readonly acme?: AcmeInput;
  /**
   * With `acme`: whether the role installed tls/gateway.crt and .key too (served until the first
   * ACME certificate). Default true; without `acme` the files are always used.
   */
  readonly tlsFiles?: boolean;
  /** Response compression, as gateway.json's `compression` (the daemon fills what is left out). */
  readonly compression?: CompressionInput;
  /** HTTP/2 on the HTTPS listener, as gateway.json's `https.http2` (on by default). */
  readonly http2?: Partial<Http2Config>;
}

export interface CompressionInput {
  readonly enabled?: boolean;
  readonly minBytes?: number;
  readonly dynamic?: Partial<CodingLevels>;
  readonly static?: Partial<CompressionConfig['static']>;
}

/** Where a scraper on the gateway (or an admin's login) finds its metrics listener. */
export const DEFAULT_METRICS_PORT = 9464;

export interface AcmeInput {
  readonly directoryUrl: string;
  readonly email?: string;
  readonly domains: readonly string[];
  readonly challenges?: AcmeConfig['challenges'];
  /** Trust for the CA's own HTTPS besides the system's (the role's tls/acme-ca.crt). */
  readonly caFile?: string;
  readonly renewFraction?: number;
  /** Default ACME_STATE_DIR (systemd's StateDirectory of the gateway unit). */
  readonly stateDir?: string;
}

/** The gateway unit's StateDirectory=nonstop-gateway, with acme/ under it. */
export const ACME_STATE_DIR = '/var/lib/nonstop-gateway/acme';

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
  const metricsPort = input.metricsPort === undefined ? DEFAULT_METRICS_PORT : input.metricsPort;
  const files = gatewayFiles(input.configDir);
  const host = input.listenHost ?? DUAL_STACK;
  const label = `gateway.json of ${input.id}`;
  // What the daemon refuses at start beyond its schema (trusted proxies that are no CIDR).
  checkClientAddress(label, {
    clientAddress: { trustedProxies: input.clientAddress?.trustedProxies ?? [] },
    http: { proxyProtocol: input.httpProxyProtocol ?? false },
    https: { proxyProtocol: input.httpsProxyProtocol ?? false },
  });
  return checkedDocument('gateway', label, {
    kind: 'gateway',
    id: input.id,
    routes: files.routes,
    http: {
      host,
      port: input.httpPort ?? 80,
      mode: input.httpMode ?? 'redirect',
      ...optional('proxyProtocol', input.httpProxyProtocol),
    },
    https: {
      host,
      port: input.httpsPort ?? 443,
      ...(input.acme !== undefined && input.tlsFiles === false ? {} : { cert: files.cert, key: files.key }),
      ...(input.acme === undefined ? {} : { acme: { stateDir: ACME_STATE_DIR, ...input.acme } }),
      ...optional('proxyProtocol', input.httpsProxyProtocol),
      ...optional('http2', input.http2),
    },
    redis: {
      username: gatewayUser(input.id),
      passwordFile: files.redisPassword,
      ...optional('prefix', input.redisPrefix),
      // The tunnels listen on the gateway's loopback only (sshd's permitlisten="127.0.0.1:PORT").
      endpoints: input.tunnels.map((t) => ({ host: '127.0.0.1', port: t.port })),
    },
    ...optional('clientAddress', input.clientAddress),
    ...optional('limits', input.limits),
    ...optional('replyTimeoutMs', input.replyTimeoutMs),
    ...optional('static', input.static),
    // Loopback only: the scraper runs on the gateway, or reaches it through an admin's SSH login.
    ...(metricsPort === null ? {} : { metrics: { host: '127.0.0.1', port: metricsPort } }),
    ...optional('compression', input.compression),
    // The same secret on every gateway: a client's Idempotency-Key maps to one request id.
    idempotency: { secretFile: files.idempotencySecret },
  } as const);
}

export type GatewayDocument = ReturnType<typeof gatewayDocument>;
