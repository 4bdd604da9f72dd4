// Schema of a knock guard's config file (`"kind": "guard"`), read by `nonstop guard`.
import { ID_PATTERN, logSchema, schemaKeySchema } from './common.js';
import {
  knockSecretSchema,
  rotationSchema,
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
  },
} as const;

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
  readonly metrics?: MetricsListenerConfig;
  readonly static: readonly { readonly name: string; readonly sequence: readonly string[] }[];
  readonly rotating: RotationParams & {
    readonly clients: readonly {
      readonly name: string;
      readonly secret: string;
      readonly previousSecret?: string;
    }[];
  };
}
