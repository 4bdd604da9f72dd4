// Schema of a core machine's config file (`"kind": "core"`).
import { listenSchema, logSchema, pathSchema, schemaKeySchema } from './common.js';

export const coreSchema = {
  $id: 'nonstop/core',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'routes', 'tls'],
  properties: {
    $schema: schemaKeySchema,
    kind: { const: 'core' },
    routes: pathSchema,
    logLevel: logSchema,
    listen: listenSchema({ host: '127.0.0.1', port: 8443 }),
    tls: {
      type: 'object',
      additionalProperties: false,
      required: ['ca', 'cert', 'key'],
      properties: {
        ca: pathSchema,
        cert: pathSchema,
        key: pathSchema,
        /** Organizational unit a client certificate must carry to be accepted as a broker. */
        brokerUnit: { type: 'string', minLength: 1, maxLength: 64, default: 'nonstop-broker' },
      },
    },
    database: {
      type: 'object',
      additionalProperties: false,
      properties: {
        /** PostgreSQL connection URL; without it the core uses embedded PGlite. */
        url: { type: 'string', pattern: '^postgres(ql)?://', maxLength: 2048 },
        schema: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$', default: 'public' },
        poolSize: { type: 'integer', minimum: 1, maximum: 256, default: 10 },
        /** PGlite data directory; omitted means in memory (nothing survives a restart). */
        dataDir: pathSchema,
        /**
         * How long an executed request's answer is kept for replays (redeliveries, a client's
         * Idempotency-Key). At least an hour: longer than any request's deadline.
         */
        requestRetentionSeconds: { type: 'integer', minimum: 3600, maximum: 31536000, default: 86400 },
      },
      default: {},
    },
    application: { type: 'string', minLength: 1, maxLength: 4096, default: 'notes' },
  },
} as const;

export interface CoreConfig {
  readonly kind: 'core';
  readonly routes: string;
  readonly logLevel: string;
  readonly listen: { readonly host: string; readonly port: number };
  readonly tls: {
    readonly ca: string;
    readonly cert: string;
    readonly key: string;
    readonly brokerUnit: string;
  };
  readonly database: {
    readonly url?: string;
    readonly schema: string;
    readonly poolSize: number;
    readonly dataDir?: string;
    readonly requestRetentionSeconds: number;
  };
  readonly application: string;
}
