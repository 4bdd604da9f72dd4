// Schema pieces shared by several config file kinds. Defaults live here, next to the schema.
import { LOG_LEVELS } from '../../lib/log.js';

export const ID_PATTERN = '^[a-z0-9][a-z0-9-]{0,62}$';

export const redisSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    host: { type: 'string', minLength: 1, maxLength: 253, default: '127.0.0.1' },
    port: { type: 'integer', minimum: 1, maximum: 65535, default: 6379 },
    username: { type: 'string', minLength: 1, maxLength: 128 },
    passwordFile: { type: 'string', minLength: 1, maxLength: 4096 },
    prefix: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,31}$', default: 'nonstop' },
  },
  default: {},
} as const;

/**
 * A gateway's reply timeout, body limit and forwarded headers: in its own config and, the same
 * schemas and defaults, in each broker's entry for it (the broker bounds envelopes by them).
 */
export const replyTimeoutSchema = { type: 'integer', minimum: 100, maximum: 600000, default: 10000 } as const;
export const maxBodyBytesSchema = { type: 'integer', minimum: 0, maximum: 67108864, default: 65536 } as const;
export const forwardHeadersSchema = {
  type: 'array',
  maxItems: 64,
  uniqueItems: true,
  // Not cookie: cookies reach the application per route (the route table's `cookies`).
  items: { type: 'string', pattern: '^[a-z0-9-]{1,64}$', not: { const: 'cookie' } },
  default: ['accept-language', 'user-agent'],
} as const;

export const pathSchema = { type: 'string', minLength: 1, maxLength: 4096 } as const;

export const listenSchema = (defaults: { host: string; port: number }) =>
  ({
    type: 'object',
    additionalProperties: false,
    properties: {
      host: { type: 'string', minLength: 1, maxLength: 253, default: defaults.host },
      port: { type: 'integer', minimum: 0, maximum: 65535, default: defaults.port },
    },
    default: {},
  }) as const;

/**
 * A config file may name its JSON Schema (`"$schema": "../schemas/gateway.json"`) so that an
 * editor completes and checks it; nonstop ignores the value. The schemas are written as files by
 * `nonstop schemas` (config/schemas/*.json in the repository).
 */
export const schemaKeySchema = { type: 'string', minLength: 1, maxLength: 4096 } as const;

export const logSchema = {
  type: 'string',
  enum: [...LOG_LEVELS],
  default: 'info',
} as const;
