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

const DNS_NAME = '^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$';

/** The gateway obtains and renews its own certificate (gateway/acme/manager.ts). */
export const acmeSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['directoryUrl', 'domains', 'stateDir'],
  properties: {
    // The CA's ACME directory, e.g. https://acme-v02.api.letsencrypt.org/directory.
    directoryUrl: { type: 'string', minLength: 8, maxLength: 2048, pattern: '^https?://' },
    // The account's contact (the CA mails about expiring certificates and policy changes).
    email: { type: 'string', maxLength: 254, pattern: '^[^@\\s]+@[^@\\s]+$' },
    // The names on the certificate (lower case); the first is its subject.
    domains: {
      type: 'array',
      minItems: 1,
      maxItems: 100,
      uniqueItems: true,
      items: { type: 'string', pattern: DNS_NAME },
    },
    // The challenge types the gateway answers, in order of preference: http-01 on the HTTP
    // listener (any mode but "off"), tls-alpn-01 on the HTTPS listener.
    challenges: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { enum: ['http-01', 'tls-alpn-01'] },
      default: ['http-01', 'tls-alpn-01'],
    },
    // Account key, certificate and key (files 0600, the folder 0700).
    stateDir: { type: 'string', minLength: 2, maxLength: 4096, pattern: '^/' },
    // CA certificate(s) to trust for the ACME server's own HTTPS, besides the system's.
    caFile: pathSchema,
    // Renew once this fraction of the certificate's lifetime has passed.
    renewFraction: { type: 'number', exclusiveMinimum: 0, maximum: 0.95, default: 2 / 3 },
    // A failed order is retried after min·2^n ms (at most max), each minus up to `jitter` of it.
    retryMinMs: { type: 'integer', minimum: 100, maximum: 86400000, default: 60000 },
    retryMaxMs: { type: 'integer', minimum: 100, maximum: 86400000, default: 3600000 },
    jitter: { type: 'number', minimum: 0, maximum: 1, default: 0.3 },
  },
} as const;

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
        // Every connection starts with a PROXY protocol header from a clientAddress.trustedProxies
        // address (a load balancer in front); others are closed.
        proxyProtocol: { type: 'boolean', default: false },
      },
      default: {},
    },
    https: {
      type: 'object',
      additionalProperties: false,
      // Certificate files, or ACME (with the files, if given, served until the first ACME
      // certificate is in: a fallback for the gateway's first minutes, never after).
      anyOf: [
        { properties: { cert: pathSchema }, required: ['cert'] },
        { properties: { acme: { type: 'object' } }, required: ['acme'] },
      ],
      dependencies: { cert: ['key'], key: ['cert'] },
      properties: {
        ...listenSchema({ host: '0.0.0.0', port: 443 }).properties,
        cert: pathSchema,
        key: pathSchema,
        acme: acmeSchema,
        // Mozilla's server-side TLS profiles: "intermediate" (TLS 1.2 with AEAD, forward-secret
        // suites, and TLS 1.3) or "modern" (TLS 1.3 only).
        profile: { type: 'string', enum: ['intermediate', 'modern'], default: 'intermediate' },
        // As http.proxyProtocol; the header comes before the TLS handshake.
        proxyProtocol: { type: 'boolean', default: false },
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
    // Who a request comes from, behind a load balancer or CDN (gateway/client-address.ts).
    clientAddress: {
      type: 'object',
      additionalProperties: false,
      properties: {
        // CIDR prefixes (or single addresses) of the proxies in front: only they may send a PROXY
        // header, and only their forwarding header is believed. Checked at start
        // (config/client-address.ts).
        trustedProxies: {
          type: 'array',
          maxItems: 256,
          uniqueItems: true,
          items: { type: 'string', minLength: 1, maxLength: 64 },
          default: [],
        },
        // The header a trusted proxy names its client in: read from the right, past every trusted
        // proxy. Only the one a proxy in front sets: any other is the client's to forge.
        forwardedHeader: {
          type: 'string',
          enum: ['x-forwarded-for', 'forwarded', 'none'],
          default: 'x-forwarded-for',
        },
        // How long a PROXY-mode connection may take to send its header before it is closed.
        proxyHeaderTimeoutMs: { type: 'integer', minimum: 100, maximum: 60000, default: 5000 },
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
    // Prometheus metrics (gateway/metrics.ts) on a listener of their own; none unless configured.
    // Loopback only (config/gateway-checks.ts) unless allowNonLoopback, for an admin network the
    // internet cannot reach: the metrics name the routes and show the traffic.
    metrics: {
      type: 'object',
      additionalProperties: false,
      required: ['port'],
      properties: {
        host: { type: 'string', minLength: 1, maxLength: 253, default: '127.0.0.1' },
        port: { type: 'integer', minimum: 0, maximum: 65535 },
        allowNonLoopback: { type: 'boolean', default: false },
      },
    },
    // Response compression (gateway/compression.ts): br or gzip by the client's Accept-Encoding,
    // for text types only. Which application replies may be compressed is the route table's
    // decision (`compress`, BREACH); static files always may be.
    compression: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean', default: true },
        // Bodies smaller than this go uncompressed (the headers would eat the gain).
        minBytes: { type: 'integer', minimum: 0, maximum: 1048576, default: 1024 },
        // Application replies, compressed per answer: levels cheap in CPU (bench/compression.ts).
        dynamic: {
          type: 'object',
          additionalProperties: false,
          properties: {
            brotliQuality: { type: 'integer', minimum: 0, maximum: 11, default: 5 },
            gzipLevel: { type: 'integer', minimum: 1, maximum: 9, default: 6 },
          },
          default: {},
        },
        // Static files without a .br/.gz sidecar, compressed once per file version and kept in
        // memory up to cacheBytes; a file over cacheBytes/8 is compressed as it is sent, at the
        // dynamic levels.
        static: {
          type: 'object',
          additionalProperties: false,
          properties: {
            brotliQuality: { type: 'integer', minimum: 0, maximum: 11, default: 9 },
            gzipLevel: { type: 'integer', minimum: 1, maximum: 9, default: 9 },
            cacheBytes: { type: 'integer', minimum: 0, maximum: 1073741824, default: 33554432 },
          },
          default: {},
        },
      },
      default: {},
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
    readonly proxyProtocol: boolean;
  };
  readonly https?: {
    readonly host: string;
    readonly port: number;
    /** With `acme`, optional: served until the first ACME certificate. */
    readonly cert?: string;
    readonly key?: string;
    readonly acme?: AcmeConfig;
    readonly profile: 'intermediate' | 'modern';
    readonly proxyProtocol: boolean;
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
  readonly clientAddress: {
    readonly trustedProxies: readonly string[];
    readonly forwardedHeader: 'x-forwarded-for' | 'forwarded' | 'none';
    readonly proxyHeaderTimeoutMs: number;
  };
  readonly replyTimeoutMs: number;
  readonly forwardHeaders: readonly string[];
  readonly idempotency: { readonly secretFile?: string; readonly identityHeaders: readonly string[] };
  readonly static: readonly StaticMount[];
  readonly metrics?: GatewayMetricsListener;
  readonly compression: CompressionConfig;
}

export interface GatewayMetricsListener {
  readonly host: string;
  readonly port: number;
  /** The host may be other than loopback (an admin network); false by default. */
  readonly allowNonLoopback: boolean;
}

export interface AcmeConfig {
  readonly directoryUrl: string;
  readonly email?: string;
  readonly domains: readonly string[];
  readonly challenges: readonly ('http-01' | 'tls-alpn-01')[];
  readonly stateDir: string;
  readonly caFile?: string;
  readonly renewFraction: number;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  readonly jitter: number;
}

export interface CodingLevels {
  /** Brotli quality, 0-11. */
  readonly brotliQuality: number;
  /** gzip level, 1-9. */
  readonly gzipLevel: number;
}

export interface CompressionConfig {
  readonly enabled: boolean;
  readonly minBytes: number;
  readonly dynamic: CodingLevels;
  readonly static: CodingLevels & { readonly cacheBytes: number };
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
