// Schema of a knock guard's config file (`"kind": "guard"`), read by `nonstop guard`.
import { ID_PATTERN, logSchema, schemaKeySchema } from './common.js';
import {
  knockSecretSchema,
  rotationSchema,
  spaKeySchema,
  staticSequenceSchema,
  type RotationParams,
} from './knock-common.js';
import { metricsListenerSchema, type MetricsListenerConfig } from './metrics-listener.js';

/** Where the guard's metrics listener is when the config has `"metrics": {}`. */
export const GUARD_METRICS_PORT = 9466;

const NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,62}$';
const portSchema = { type: 'integer', minimum: 1, maximum: 65535 } as const;

export const guardSchema = {
  $id: 'nonstop/guard',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'gateway'],
  properties: {
    $schema: schemaKeySchema,
    kind: { const: 'guard' },
    /** The gateway's id: part of every rotating sequence, so secrets are per gateway. */
    gateway: { type: 'string', pattern: ID_PATTERN },
    logLevel: logSchema,
    sshPort: { ...portSchema, default: 22 },
    publicTcpPorts: { type: 'array', maxItems: 16, uniqueItems: true, items: portSchema, default: [80, 443] },
    windowSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 30 },
    sequenceTimeoutMs: { type: 'integer', minimum: 100, maximum: 120000, default: 10000 },
    maxTrackedSources: { type: 'integer', minimum: 16, maximum: 10000000, default: 10000 },
    /** IPv6 sources are tracked per prefix of this length: one /64 holds one knock state. */
    ipv6PrefixLength: { type: 'integer', minimum: 32, maximum: 128, default: 64 },
    icmpEcho: { type: 'boolean', default: true },
    removeTableOnExit: { type: 'boolean', default: false },
    statsIntervalSeconds: { type: 'integer', minimum: 0, maximum: 86400, default: 300 },
    divertProtocols: {
      type: 'object',
      additionalProperties: false,
      properties: {
        tcp: { type: 'integer', enum: [253, 254], default: 253 },
        udp: { type: 'integer', enum: [253, 254], default: 254 },
      },
      default: {},
    },
    nft: { type: 'string', minLength: 1, maxLength: 4096, default: 'nft' },
    /**
     * The journal of spent SPA packets and rotating steps (knock/guard-state.ts), so a restart
     * does not make a recorded one usable again. Absent: kept in memory only (a warning at start).
     */
    stateFile: { type: 'string', pattern: '^/', minLength: 2, maxLength: 4096 },
    /** Prometheus metrics (knock/metrics.ts), loopback only unless allowNonLoopback; none unless set. */
    metrics: metricsListenerSchema(GUARD_METRICS_PORT),
    static: {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'sequence'],
        properties: {
          name: { type: 'string', pattern: NAME_PATTERN },
          sequence: staticSequenceSchema,
        },
      },
      default: [],
    },
    rotating: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ...rotationSchema.properties,
        clients: {
          type: 'array',
          maxItems: 10000,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'secret'],
            properties: {
              name: { type: 'string', pattern: NAME_PATTERN },
              secret: knockSecretSchema,
              /** During a rotation: the secret the client may still knock with, until it switched. */
              previousSecret: knockSecretSchema,
            },
          },
          default: [],
        },
      },
      default: {},
    },
    /**
     * Single-packet authorization in fwknop's format (knock/spa.ts): one UDP datagram, encrypted
     * (Rijndael) and authenticated (HMAC-SHA256) with a client's keys. Absent: no SPA port.
     */
    spa: {
      type: 'object',
      additionalProperties: false,
      required: ['clients'],
      properties: {
        /** fwknop's default port; filtered like the knock ports (never an answer). */
        port: { ...portSchema, default: 62201 },
        /** How old a packet's timestamp may be (fwknopd's MAX_SPA_PACKET_AGE). */
        maxAgeSeconds: { type: 'integer', minimum: 5, maximum: 3600, default: 120 },
        /** How far ahead of this host's clock a packet's timestamp may be. */
        clockSkewSeconds: { type: 'integer', minimum: 0, maximum: 3600, default: 30 },
        /** Digests of accepted packets kept against replay; when full, new packets are refused. */
        replayCacheSize: { type: 'integer', minimum: 1024, maximum: 10000000, default: 100000 },
        /** Datagrams per second one source (an IPv6 prefix) may send to the port; more are dropped. */
        perSourcePacketsPerSecond: { type: 'integer', minimum: 1, maximum: 100000, default: 20 },
        /** Datagrams per second all sources may send together: bounds the guard's CPU under a flood. */
        packetsPerSecond: { type: 'integer', minimum: 10, maximum: 1000000, default: 5000 },
        clients: {
          type: 'array',
          minItems: 1,
          maxItems: 256,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'key', 'hmacKey'],
            properties: {
              name: { type: 'string', pattern: NAME_PATTERN },
              /** fwknop's KEY_BASE64 (`fwknop --key-gen`, `nonstop spa-keygen`). */
              key: spaKeySchema,
              /** fwknop's HMAC_KEY_BASE64. */
              hmacKey: spaKeySchema,
              /**
               * Whom a packet opens SSH for: "source", the address it came from (the packet must
               * carry 0.0.0.0 or that same address); or "packet", the address it carries, which
               * must not be 0.0.0.0 (fwknopd with REQUIRE_SOURCE_ADDRESS; behind a NAT whose
               * outside address the client knows).
               */
              openFor: { enum: ['source', 'packet'], default: 'source' },
            },
          },
        },
      },
    },
  },
} as const;

export interface GuardSpaClient {
  readonly name: string;
  readonly key: string;
  readonly hmacKey: string;
  readonly openFor: 'source' | 'packet';
}

export interface GuardSpaConfig {
  readonly port: number;
  readonly maxAgeSeconds: number;
  readonly clockSkewSeconds: number;
  readonly replayCacheSize: number;
  readonly perSourcePacketsPerSecond: number;
  readonly packetsPerSecond: number;
  readonly clients: readonly GuardSpaClient[];
}

export interface GuardConfig {
  readonly kind: 'guard';
  readonly gateway: string;
  readonly logLevel: string;
  readonly sshPort: number;
  readonly publicTcpPorts: readonly number[];
  readonly windowSeconds: number;
  readonly sequenceTimeoutMs: number;
  readonly maxTrackedSources: number;
  readonly ipv6PrefixLength: number;
  readonly icmpEcho: boolean;
  readonly removeTableOnExit: boolean;
  readonly statsIntervalSeconds: number;
  readonly divertProtocols: { readonly tcp: number; readonly udp: number };
  readonly nft: string;
  readonly stateFile?: string;
  readonly metrics?: MetricsListenerConfig;
  readonly static: readonly { readonly name: string; readonly sequence: readonly string[] }[];
  readonly rotating: RotationParams & {
    readonly clients: readonly {
      readonly name: string;
      readonly secret: string;
      readonly previousSecret?: string;
    }[];
  };
  readonly spa?: GuardSpaConfig;
}
