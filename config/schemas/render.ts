// Schemas of `nonstop render`'s input documents: what Ansible knows about a host (from the
// inventory), as JSON. The renderers check the rest (one word per address, no newlines).
import type { EgressRule } from '../../core/firewall.js';
import type { HostRole, TunnelBroker } from '../../gateway/sshd-config.js';
import { brokerSchema } from './broker.js';
import { ID_PATTERN, maxBodyBytesSchema, pathSchema, redisSchema, replyTimeoutSchema } from './common.js';
import { coreSchema } from './core.js';
import { acmeSchema, gatewaySchema } from './gateway.js';
import { guardSchema } from './guard.js';
import { knockSecretSchema, rotationSchema, spaKeySchema } from './knock-common.js';
import { knockSchema } from './knock.js';

const portSchema = { type: 'integer', minimum: 1, maximum: 65535 } as const;
const NAME_PATTERN = '^[a-z_][a-z0-9_-]{0,31}$';
const addressSchema = { type: 'string', minLength: 2, maxLength: 64, pattern: '^[0-9A-Fa-f.:/]+$' } as const;

export const sshdInputSchema = {
  $id: 'nonstop/render-sshd',
  type: 'object',
  additionalProperties: false,
  required: ['role', 'port', 'hostKeys', 'allowGroups'],
  properties: {
    role: { enum: ['gateway', 'broker', 'core'] },
    port: portSchema,
    /** Empty: every address. */
    listenAddresses: { type: 'array', maxItems: 16, uniqueItems: true, items: addressSchema, default: [] },
    hostKeys: { type: 'array', minItems: 1, maxItems: 4, items: pathSchema },
    /** Deployed hosts always name the groups sshd admits. */
    allowGroups: {
      type: 'array',
      minItems: 1,
      maxItems: 8,
      uniqueItems: true,
      items: { type: 'string', pattern: NAME_PATTERN },
    },
    authorizedKeysFile: pathSchema,
    tunnelUser: { type: 'string', pattern: NAME_PATTERN },
    tunnelAuthorizedKeysFile: pathSchema,
    brokers: {
      type: 'array',
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'publicKey', 'port'],
        properties: {
          id: { type: 'string', pattern: ID_PATTERN },
          publicKey: { type: 'string', minLength: 16, maxLength: 16384 },
          /** During a rotation: the key it had, which logs in too until the broker switched. */
          previousPublicKey: { type: 'string', minLength: 16, maxLength: 16384 },
          port: portSchema,
        },
      },
    },
    jumpTargets: {
      type: 'array',
      maxItems: 16,
      uniqueItems: true,
      items: { type: 'string', minLength: 3, maxLength: 300 },
    },
  },
} as const;

export interface SshdInput {
  readonly role: HostRole;
  readonly port: number;
  readonly listenAddresses: readonly string[];
  readonly hostKeys: readonly string[];
  readonly allowGroups: readonly string[];
  readonly authorizedKeysFile?: string;
  readonly tunnelUser?: string;
  readonly tunnelAuthorizedKeysFile?: string;
  readonly brokers?: readonly TunnelBroker[];
  readonly jumpTargets?: readonly string[];
}

export const nftablesInputSchema = {
  $id: 'nonstop/render-nftables',
  type: 'object',
  additionalProperties: false,
  required: ['role', 'addresses', 'brokers'],
  properties: {
    /** Gateways and brokers load the guard's table (`nonstop guard --print-ruleset`). */
    role: { const: 'core' },
    addresses: { type: 'array', minItems: 1, maxItems: 8, uniqueItems: true, items: addressSchema },
    brokers: { type: 'array', minItems: 1, maxItems: 256, uniqueItems: true, items: addressSchema },
    listenPort: { ...portSchema, default: 9443 },
    sshPort: { ...portSchema, default: 22 },
    icmpEcho: { type: 'boolean', default: true },
    egress: {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['protocol', 'ports'],
        properties: {
          protocol: { enum: ['tcp', 'udp'] },
          ports: { type: 'array', minItems: 1, maxItems: 16, uniqueItems: true, items: portSchema },
          /** Absent: any destination. */
          to: { type: 'array', minItems: 1, maxItems: 64, uniqueItems: true, items: addressSchema },
        },
      },
      default: [],
    },
  },
} as const;

export interface NftablesInput {
  readonly role: 'core';
  readonly addresses: readonly string[];
  readonly brokers: readonly string[];
  readonly listenPort: number;
  readonly sshPort: number;
  readonly icmpEcho: boolean;
  readonly egress: readonly EgressRule[];
}

// The host configs' inputs: the facts of a deployment and its few tunables. The builders in
// config/render/ decide the rest. Sub-schemas of the daemons' own schemas are reused so that an
// input is refused for exactly what the daemon would refuse (their defaults are not applied
// here: a compiled input schema fills none, and the builder leaves such fields to the daemon).
const dirSchema = { type: 'string', minLength: 2, maxLength: 4096, pattern: '^/' } as const;
const hostSchema = { type: 'string', minLength: 1, maxLength: 253, pattern: '^[0-9A-Za-z.:-]+$' } as const;
const idSchema = { type: 'string', pattern: ID_PATTERN } as const;
const clientNameSchema = guardSchema.properties.rotating.properties.clients.items.properties.name;

export const gatewayInputSchema = {
  $id: 'nonstop/render-gateway',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'configDir', 'tunnels'],
  properties: {
    id: idSchema,
    configDir: dirSchema,
    tunnels: {
      type: 'array',
      minItems: 1,
      maxItems: 16,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['broker', 'port'],
        properties: { broker: idSchema, port: portSchema },
      },
    },
    listenHost: hostSchema,
    httpPort: portSchema,
    httpsPort: portSchema,
    httpMode: gatewaySchema.properties.http.properties.mode,
    // PROXY protocol on port 80 / 443, from clientAddress.trustedProxies (Ansible:
    // gateway_http_proxy_protocol, gateway_https_proxy_protocol, gateway_trusted_proxies).
    httpProxyProtocol: gatewaySchema.properties.http.properties.proxyProtocol,
    httpsProxyProtocol: gatewaySchema.properties.https.properties.proxyProtocol,
    clientAddress: gatewaySchema.properties.clientAddress,
    redisPrefix: redisSchema.properties.prefix,
    limits: gatewaySchema.properties.limits,
    replyTimeoutMs: replyTimeoutSchema,
    // Static mounts, each `{ path, dir, maxAgeSeconds?, index? }` (Ansible: gateway_static).
    static: gatewaySchema.properties.static,
    // The metrics listener on 127.0.0.1:metricsPort (Ansible: gateway_metrics_port); null: none.
    metricsPort: { type: ['integer', 'null'], minimum: 1, maximum: 65535 },
    // Certificates from an ACME CA (Ansible: gateway_acme); the daemon's schema, but for
    // retry tuning, which keeps its defaults.
    acme: {
      type: 'object',
      additionalProperties: false,
      required: ['directoryUrl', 'domains'],
      properties: {
        directoryUrl: acmeSchema.properties.directoryUrl,
        email: acmeSchema.properties.email,
        domains: acmeSchema.properties.domains,
        challenges: acmeSchema.properties.challenges,
        caFile: dirSchema,
        renewFraction: acmeSchema.properties.renewFraction,
        stateDir: dirSchema,
      },
    },
    tlsFiles: { type: 'boolean' },
    // Response compression, as gateway.json's (Ansible: gateway_compression).
    compression: gatewaySchema.properties.compression,
    // HTTP/2 on the HTTPS listener, as gateway.json's https.http2 (Ansible: gateway_http2).
    http2: gatewaySchema.properties.https.properties.http2,
  },
} as const;

export const guardInputSchema = {
  $id: 'nonstop/render-guard',
  type: 'object',
  additionalProperties: false,
  required: ['role', 'id'],
  properties: {
    role: { enum: ['gateway', 'broker'] },
    id: idSchema,
    sshPort: portSchema,
    httpPort: portSchema,
    httpsPort: portSchema,
    windowSeconds: guardSchema.properties.windowSeconds,
    rotation: rotationSchema,
    clients: guardSchema.properties.rotating.properties.clients,
    static: guardSchema.properties.static,
    /** SPA clients (Ansible: gateway_spa_clients, broker_guard_spa_clients), `{name, key, hmacKey}`. */
    spaClients: {
      type: 'array',
      maxItems: guardSchema.properties.spa.properties.clients.maxItems,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'key', 'hmacKey'],
        properties: {
          name: guardSchema.properties.spa.properties.clients.items.properties.name,
          key: spaKeySchema,
          hmacKey: spaKeySchema,
        },
      },
    },
    spaPort: portSchema,
    /** The metrics listener on 127.0.0.1 (Ansible: gateway_guard_metrics_port, broker_guard_metrics_port); null: none. */
    metricsPort: { type: ['integer', 'null'], minimum: 1, maximum: 65535 },
    /** The guard's journal; Ansible leaves the default (the unit's StateDirectory). */
    stateFile: guardSchema.properties.stateFile,
  },
} as const;

export const brokerInputSchema = {
  $id: 'nonstop/render-broker',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'configDir', 'gateways', 'core'],
  properties: {
    id: idSchema,
    configDir: dirSchema,
    gateways: {
      type: 'array',
      minItems: 1,
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'address', 'hostKeyFingerprint', 'remotePort'],
        properties: {
          id: idSchema,
          address: hostSchema,
          sshPort: portSchema,
          tunnelUser: { type: 'string', pattern: NAME_PATTERN },
          hostKeyFingerprint: { type: 'string', pattern: '^SHA256:[A-Za-z0-9+/]{43}$' },
          remotePort: portSchema,
          redisPort: portSchema,
          // true or "rotating": a rotating sequence; "spa": an SPA packet; false: no knock.
          knock: { anyOf: [{ type: 'boolean' }, { enum: ['rotating', 'spa'] }] },
          replyTimeoutMs: replyTimeoutSchema,
          maxBodyBytes: maxBodyBytesSchema,
          // The names it serves (ACME challenge answers are relayed for these only).
          names: brokerSchema.properties.gateways.items.properties.names,
        },
      },
    },
    core: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: brokerSchema.properties.core.properties.url,
        peers: brokerSchema.properties.core.properties.peers,
        serverName: brokerSchema.properties.core.properties.serverName,
      },
    },
    redisDir: dirSchema,
    redisFirstPort: portSchema,
    redisWorkerUser: { type: 'string', pattern: NAME_PATTERN },
    redisPrefix: redisSchema.properties.prefix,
    redisServer: brokerSchema.properties.redisServer,
    rotation: rotationSchema,
    cells: brokerSchema.properties.cells,
    concurrency: brokerSchema.properties.concurrency,
    tunnels: brokerSchema.properties.tunnels,
    /** null: no status listener. */
    statusPort: { type: ['integer', 'null'], minimum: 1, maximum: 65535 },
  },
} as const;

export const coreInputSchema = {
  $id: 'nonstop/render-core',
  type: 'object',
  additionalProperties: false,
  required: ['configDir', 'privateAddress', 'database'],
  properties: {
    configDir: dirSchema,
    privateAddress: addressSchema,
    port: portSchema,
    database: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      maxProperties: 1,
      properties: {
        postgres: {
          type: 'object',
          additionalProperties: false,
          required: ['user', 'database', 'port'],
          properties: {
            user: { type: 'string', pattern: NAME_PATTERN },
            database: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$' },
            port: portSchema,
            socketDir: { ...dirSchema, pattern: '^/[A-Za-z0-9._/-]*$' },
          },
        },
        embedded: {
          type: 'object',
          additionalProperties: false,
          required: ['dataDir'],
          properties: { dataDir: dirSchema },
        },
      },
    },
    application: coreSchema.properties.application,
    upstreams: coreSchema.properties.upstreams,
    brokerUnit: coreSchema.properties.tls.properties.brokerUnit,
    /** The metrics listener on 127.0.0.1 (Ansible: core_metrics_port); null: none. */
    metricsPort: { type: ['integer', 'null'], minimum: 1, maximum: 65535 },
  },
} as const;

export const knockInputSchema = {
  $id: 'nonstop/render-knock',
  type: 'object',
  additionalProperties: false,
  required: ['client', 'gateways'],
  properties: {
    client: clientNameSchema,
    rotation: rotationSchema,
    gateways: {
      type: 'array',
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'address', 'secret'],
        properties: {
          id: idSchema,
          address: hostSchema,
          sshPort: portSchema,
          secret: knockSecretSchema,
          profile: { type: 'string', ...knockSchema.properties.profiles.propertyNames },
        },
      },
    },
  },
} as const;
