// Schema of a broker's config file (`"kind": "broker"`).
import { ID_PATTERN, logSchema, pathSchema, redisSchema } from './common.js';
import type { RedisConfig } from './gateway.js';

export const brokerSchema = {
  $id: 'nonstop/broker',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'id', 'routes', 'gateways', 'core'],
  properties: {
    kind: { const: 'broker' },
    id: { type: 'string', pattern: ID_PATTERN },
    routes: pathSchema,
    logLevel: logSchema,
    redis: redisSchema,
    gateways: {
      type: 'array',
      minItems: 1,
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id'],
        properties: { id: { type: 'string', pattern: ID_PATTERN } },
      },
    },
    concurrency: { type: 'integer', minimum: 1, maximum: 1024, default: 32 },
    // A dead broker's jobs are retaken once its lock expires and a stalled-job check runs.
    // BullMQ lets one check run per interval across all brokers of a queue (the interval of
    // whichever broker checked last), so both bound recovery; keep them well below the
    // gateways' reply deadline.
    lockDurationMs: { type: 'integer', minimum: 1000, maximum: 600000, default: 5000 },
    stalledIntervalMs: { type: 'integer', minimum: 500, maximum: 600000, default: 2000 },
    core: {
      type: 'object',
      additionalProperties: false,
      required: ['url', 'ca', 'cert', 'key'],
      properties: {
        url: { type: 'string', pattern: '^https://[^/]+/?$', maxLength: 512 },
        ca: pathSchema,
        cert: pathSchema,
        key: pathSchema,
        serverName: { type: 'string', minLength: 1, maxLength: 253 },
        maxSockets: { type: 'integer', minimum: 1, maximum: 4096, default: 64 },
        attemptTimeoutMs: { type: 'integer', minimum: 100, maximum: 600000, default: 5000 },
      },
    },
  },
} as const;

export interface BrokerConfig {
  readonly kind: 'broker';
  readonly id: string;
  readonly routes: string;
  readonly logLevel: string;
  readonly redis: RedisConfig;
  readonly gateways: readonly { readonly id: string }[];
  readonly concurrency: number;
  readonly lockDurationMs: number;
  readonly stalledIntervalMs: number;
  readonly core: {
    readonly url: string;
    readonly ca: string;
    readonly cert: string;
    readonly key: string;
    readonly serverName?: string;
    readonly maxSockets: number;
    readonly attemptTimeoutMs: number;
  };
}
