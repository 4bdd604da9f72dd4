// Schema of a core machine's config file (`"kind": "core"`).
import { listenSchema, logSchema, pathSchema, schemaKeySchema } from './common.js';
import { metricsListenerSchema, type MetricsListenerConfig } from './metrics-listener.js';

/** Where the core's metrics listener is when the config has `"metrics": {}`. */
export const CORE_METRICS_PORT = 9465;

/**
 * The largest upstream answer body a core accepts: its base64 in the broker's reply must stay
 * under MAX_REPLY_BYTES (5 MiB, lib/envelope.ts), with room for headers and cookies.
 */
export const MAX_UPSTREAM_RESPONSE_BYTES = 3.5 * 1024 * 1024;

/** An application's own HTTP server that serves the routes whose names match `routes`. */
const upstreamSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'routes'],
  properties: {
    /** http:// to a loopback or private address, or https:// (then `ca` is required). */
    url: { type: 'string', pattern: '^https?://', maxLength: 2048 },
    /** Route names or globs (`*` matches any run of characters), e.g. "site.*". */
    routes: {
      type: 'array',
      minItems: 1,
      maxItems: 256,
      uniqueItems: true,
      items: { type: 'string', pattern: '^[A-Za-z0-9_.*-]{1,128}$' },
    },
    /** CA certificate file that an https:// upstream's certificate must chain to. */
    ca: pathSchema,
    timeoutMs: { type: 'integer', minimum: 100, maximum: 600000, default: 10000 },
    maxResponseBytes: {
      type: 'integer',
      minimum: 1024,
      maximum: MAX_UPSTREAM_RESPONSE_BYTES,
      default: 2 * 1024 * 1024,
    },
  },
} as const;

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
    /** "notes" (built in), a JS module path, or null: every route is served by an upstream. */
    application: {
      anyOf: [{ type: 'string', minLength: 1, maxLength: 4096 }, { type: 'null' }],
      default: 'notes',
    },
    /** Applications in any language, reached over HTTP; a route goes to the first that matches. */
    upstreams: { type: 'array', maxItems: 16, items: upstreamSchema, default: [] },
    /**
     * Prometheus metrics (core/metrics.ts) on a plain HTTP listener of their own, loopback only
     * unless allowNonLoopback; none unless configured.
     */
    metrics: metricsListenerSchema(CORE_METRICS_PORT),
  },
} as const;

export interface UpstreamConfig {
  readonly url: string;
  readonly routes: readonly string[];
  readonly ca?: string;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
}

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
  readonly application: string | null;
  readonly upstreams: readonly UpstreamConfig[];
  readonly metrics?: MetricsListenerConfig;
}
