// Schema of a gateway's config file (`"kind": "gateway"`).
import {
  forwardHeadersSchema,
  ID_PATTERN,
  listenSchema,
  logSchema,
  maxBodyBytesSchema,
  pathSchema,
  redisSchema,
  replyTimeoutSchema,
  schemaKeySchema,
} from './common.js';

export const gatewaySchema = {
  $id: 'nonstop/gateway',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'id', 'routes'],
  properties: {
    $schema: schemaKeySchema,
    kind: { const: 'gateway' },
    id: { type: 'string', pattern: ID_PATTERN },
    routes: pathSchema,
    logLevel: logSchema,
    http: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ...listenSchema({ host: '0.0.0.0', port: 80 }).properties,
        mode: { type: 'string', enum: ['redirect', 'serve', 'off'], default: 'redirect' },
      },
      default: {},
    },
    https: {
      type: 'object',
      additionalProperties: false,
      required: ['cert', 'key'],
      properties: {
        ...listenSchema({ host: '0.0.0.0', port: 443 }).properties,
        cert: pathSchema,
        key: pathSchema,
        // Mozilla's server-side TLS profiles: "intermediate" (TLS 1.2 with AEAD, forward-secret
        // suites, and TLS 1.3) or "modern" (TLS 1.3 only).
        profile: { type: 'string', enum: ['intermediate', 'modern'], default: 'intermediate' },
        // Strict-Transport-Security on every HTTPS answer (never on plain HTTP, RFC 6797 7.2).
        hsts: {
          type: 'object',
          additionalProperties: false,
          properties: {
            maxAge: { type: 'integer', minimum: 0, maximum: 63072000, default: 31536000 },
            includeSubDomains: { type: 'boolean', default: false },
            preload: { type: 'boolean', default: false },
          },
          default: {},
        },
        // HTTP/2 on this listener (ALPN "h2", HTTP/1.1 for clients that do not offer it):
        // gateway/http2-guard.ts. Its header list is bounded by limits.maxHeaderBytes and
        // limits.maxHeaders, as HTTP/1.1's headers are.
        http2: {
          type: 'object',
          additionalProperties: false,
          properties: {
            enabled: { type: 'boolean', default: true },
            // SETTINGS_MAX_CONCURRENT_STREAMS: requests one connection may have open at once.
            maxConcurrentStreams: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            // SETTINGS_INITIAL_WINDOW_SIZE: request body bytes a stream may send unacknowledged.
            initialWindowSize: { type: 'integer', minimum: 16384, maximum: 1048576, default: 65535 },
            // What one session may buffer (nghttp2's state and queued frames) before it is closed.
            maxSessionMemoryMb: { type: 'integer', minimum: 1, maximum: 256, default: 10 },
            // Streams one session may open over its life; then GOAWAY and the client reconnects.
            maxStreamsPerSession: { type: 'integer', minimum: 10, maximum: 10000000, default: 10000 },
            // Streams a client may reset in a second before its session is ended (rapid reset,
            // CVE-2023-44487).
            maxResetsPerSecond: { type: 'integer', minimum: 1, maximum: 10000, default: 100 },
            // A session without a frame in either direction for this long is closed.
            idleTimeoutMs: { type: 'integer', minimum: 1000, maximum: 600000, default: 30000 },
          },
          default: {},
        },
      },
    },
    redis: {
      ...redisSchema,
      properties: {
        ...redisSchema.properties,
        // Several brokers' Redis (each through its own tunnel port): the gateway queues on
        // whichever is up and moves over when it goes down. Replaces host/port when given.
        endpoints: {
          type: 'array',
          minItems: 1,
          maxItems: 16,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['port'],
            properties: {
              host: { type: 'string', minLength: 1, maxLength: 253, default: '127.0.0.1' },
              port: { type: 'integer', minimum: 1, maximum: 65535 },
              // When this Redis has another password for the gateway's user.
              passwordFile: { type: 'string', minLength: 1, maxLength: 4096 },
            },
          },
        },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxBodyBytes: maxBodyBytesSchema,
        maxHeaders: { type: 'integer', minimum: 4, maximum: 500, default: 64 },
        maxHeaderBytes: { type: 'integer', minimum: 1024, maximum: 65536, default: 16384 },
        ratePerSecond: { type: 'number', exclusiveMinimum: 0, maximum: 1000000, default: 50 },
        rateBurst: { type: 'integer', minimum: 1, maximum: 1000000, default: 100 },
        maxTrackedClients: { type: 'integer', minimum: 16, maximum: 10000000, default: 100000 },
        // IPv6 sources share a bucket per prefix of this length (one subscriber usually holds a
        // whole /64); IPv4 ones have a bucket per address.
        ipv6PrefixLength: { type: 'integer', minimum: 32, maximum: 128, default: 64 },
        maxPending: { type: 'integer', minimum: 1, maximum: 1000000, default: 10000 },
        headersTimeoutMs: { type: 'integer', minimum: 1000, maximum: 600000, default: 10000 },
        requestTimeoutMs: { type: 'integer', minimum: 1000, maximum: 600000, default: 30000 },
        maxConnections: { type: 'integer', minimum: 1, maximum: 1000000, default: 10000 },
      },
      default: {},
    },
    replyTimeoutMs: replyTimeoutSchema,
    forwardHeaders: forwardHeadersSchema,
    // Folders the gateway serves itself, before routing (gateway/static-files.ts): nothing is
    // queued for them. Checked at start (config/static-mounts.ts): folders exist, no mount nests
    // in another, none shadows a route.
    static: {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['path', 'dir'],
        properties: {
          // A URL prefix: starts and ends with "/", no dot segment.
          path: {
            type: 'string',
            maxLength: 256,
            pattern: '^/(?:[A-Za-z0-9_~-][A-Za-z0-9_.~-]*/)*$',
          },
          // An absolute folder.
          dir: { type: 'string', minLength: 2, maxLength: 4096, pattern: '^/' },
          // Cache lifetime of names without a content hash (hashed names are immutable for a year).
          maxAgeSeconds: { type: 'integer', minimum: 0, maximum: 31536000, default: 300 },
          // Serve dir/index.html for a path ending in "/" (never a listing).
          index: { type: 'boolean', default: false },
        },
      },
      default: [],
    },
    idempotency: {
      type: 'object',
      additionalProperties: false,
      properties: {
        // The deployment's secret (the same file on every gateway): request ids are an HMAC
        // of the client's key under it. Without it, requests with an Idempotency-Key are
        // refused (501), since their ids could not match across gateways.
        secretFile: pathSchema,
        // Headers whose values name the client: a key is that client's key only.
        identityHeaders: {
          type: 'array',
          maxItems: 16,
          uniqueItems: true,
          items: { type: 'string', pattern: '^[a-z0-9-]{1,64}$' },
          default: ['authorization', 'cookie'],
        },
      },
      default: {},
    },
  },
} as const;

export interface GatewayConfig {
  readonly kind: 'gateway';
  readonly id: string;
  readonly routes: string;
  readonly logLevel: string;
  readonly http: {
    readonly host: string;
    readonly port: number;
    readonly mode: 'redirect' | 'serve' | 'off';
  };
  readonly https?: {
    readonly host: string;
    readonly port: number;
    readonly cert: string;
    readonly key: string;
    readonly profile: 'intermediate' | 'modern';
    readonly hsts: {
      readonly maxAge: number;
      readonly includeSubDomains: boolean;
      readonly preload: boolean;
    };
    readonly http2: Http2Config;
  };
  readonly redis: GatewayRedisConfig;
  readonly limits: {
    readonly maxBodyBytes: number;
    readonly maxHeaders: number;
    readonly maxHeaderBytes: number;
    readonly ratePerSecond: number;
    readonly rateBurst: number;
    readonly maxTrackedClients: number;
    readonly ipv6PrefixLength: number;
    readonly maxPending: number;
    readonly headersTimeoutMs: number;
    readonly requestTimeoutMs: number;
    readonly maxConnections: number;
  };
  readonly replyTimeoutMs: number;
  readonly forwardHeaders: readonly string[];
  readonly idempotency: { readonly secretFile?: string; readonly identityHeaders: readonly string[] };
  readonly static: readonly StaticMount[];
}

export interface Http2Config {
  readonly enabled: boolean;
  readonly maxConcurrentStreams: number;
  readonly initialWindowSize: number;
  readonly maxSessionMemoryMb: number;
  readonly maxStreamsPerSession: number;
  readonly maxResetsPerSecond: number;
  readonly idleTimeoutMs: number;
}

export interface StaticMount {
  /** URL prefix, starting and ending with "/". */
  readonly path: string;
  /** Absolute folder. */
  readonly dir: string;
  readonly maxAgeSeconds: number;
  readonly index: boolean;
}

export interface RedisConfig {
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly passwordFile?: string;
  readonly prefix: string;
}

export interface RedisEndpoint {
  readonly host: string;
  readonly port: number;
  readonly passwordFile?: string;
}

export interface GatewayRedisConfig extends RedisConfig {
  readonly endpoints?: readonly RedisEndpoint[];
}

/** Each endpoint as a connection config of its own (one, from host/port, when none are listed). */
export function redisEndpoints(config: GatewayRedisConfig): RedisConfig[] {
  const { endpoints, ...base } = config;
  if (endpoints === undefined) return [base];
  return endpoints.map((e) => ({
    ...base,
    host: e.host,
    port: e.port,
    ...(e.passwordFile === undefined ? {} : { passwordFile: e.passwordFile }),
  }));
}
