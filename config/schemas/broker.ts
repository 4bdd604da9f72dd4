// Schema of a broker's config file (`"kind": "broker"`).
import { rotationSchema, staticSequenceSchema, type RotationParams } from './knock-common.js';
import {
  forwardHeadersSchema,
  ID_PATTERN,
  logSchema,
  maxBodyBytesSchema,
  pathSchema,
  redisSchema,
  replyTimeoutSchema,
  schemaKeySchema,
} from './common.js';
import type { RedisConfig } from './gateway.js';

/**
 * A gateway's own Redis on this broker (its queue, its limits): where the broker's worker for
 * that gateway connects and where that gateway's tunnel leads. Each field left out is taken
 * from the top-level `redis` (so one local Redis still serves every gateway in a test).
 */
const gatewayRedisSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    host: { type: 'string', minLength: 1, maxLength: 253 },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    username: { type: 'string', minLength: 1, maxLength: 128 },
    passwordFile: pathSchema,
  },
} as const;

/** A gateway's Redis yields to the broker (systemd's default weight, 100) two to one. */
export const REDIS_CPU_WEIGHT = 50;
/**
 * Half a core. BullMQ costs its Redis about 0.09 ms of CPU per job (add, take, complete): at the
 * ~3200 jobs/s one producer and one worker reach on a 2-core machine, 30 % of a core, so 50 %
 * does not hold back a gateway's real traffic, while a gateway burning its Redis with O(N)
 * commands takes half a core instead of a whole one (bench/redis-cpu-budget.ts).
 */
export const REDIS_CPU_QUOTA_PERCENT = 50;

/**
 * The bounds of every gateway's Redis server, as `nonstop redis-acl` renders its redis.conf.
 * One gateway's worst behaviour hits these limits of its own Redis only.
 */
const redisServerSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    // Data and client buffers; past it writes are refused (noeviction: BullMQ keeps every key).
    maxMemoryMb: { type: 'integer', minimum: 8, maximum: 65536, default: 256 },
    // That gateway's processes (2 connections each: queue, replies; 3 with ACME, its challenge
    // store) + the broker's 3 + admin.
    maxClients: { type: 'integer', minimum: 8, maximum: 10000, default: 32 },
    // The largest job (a serialized envelope) Redis accepts: proto-max-bulk-len. The query and
    // output buffer limits follow from it. Keep it above the gateway's limits.maxBodyBytes plus
    // the envelope (headers, path, query: well under 1 MiB).
    maxJobBytes: { type: 'integer', minimum: 1048576, maximum: 536870912, default: 4194304 },
    // Idle clients are closed after this; every connection of ours sends PING each minute.
    idleTimeoutSeconds: { type: 'integer', minimum: 120, maximum: 86400, default: 300 },
    // Its share of the CPU under contention (systemd CPUWeight; the broker and every other
    // service have 100): below 100, so that a gateway's Redis busy with O(N) commands yields to
    // the broker and the other gateways' Redis servers; work-conserving, so an idle machine
    // still gives it all it asks for.
    cpuWeight: { type: 'integer', minimum: 1, maximum: 99, default: REDIS_CPU_WEIGHT },
    // A hard ceiling (systemd CPUQuota, percent of one CPU) whether the machine is idle or not;
    // null: none. Redis runs commands on one thread, so 100 is one whole core.
    cpuQuotaPercent: {
      type: ['integer', 'null'],
      minimum: 5,
      maximum: 1000,
      default: REDIS_CPU_QUOTA_PERCENT,
    },
  },
  default: {},
} as const;

export const brokerSchema = {
  $id: 'nonstop/broker',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'id', 'routes', 'gateways', 'core'],
  properties: {
    $schema: schemaKeySchema,
    kind: { const: 'broker' },
    id: { type: 'string', pattern: ID_PATTERN },
    routes: pathSchema,
    logLevel: logSchema,
    redis: redisSchema,
    redisServer: redisServerSchema,
    gateways: {
      type: 'array',
      minItems: 1,
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id'],
        properties: {
          id: { type: 'string', pattern: ID_PATTERN },
          redis: gatewayRedisSchema,
          // What this gateway is configured with (defaults: the gateway's own), so that the
          // broker can bound what it queues: a deadline at most the reply timeout (or the
          // route's timeoutMs) away, a body within its limit, only the headers it forwards.
          replyTimeoutMs: replyTimeoutSchema,
          maxBodyBytes: maxBodyBytesSchema,
          forwardHeaders: forwardHeadersSchema,
          // The names this gateway serves (lower case): the ACME challenge answers it publishes
          // are relayed for these names only, and only to the gateways that serve them too
          // (broker/acme-relay-hub.ts). None: it answers its own challenges alone.
          names: {
            type: 'array',
            maxItems: 100,
            uniqueItems: true,
            items: {
              type: 'string',
              maxLength: 253,
              pattern:
                '^(?=.*[a-z])[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$',
            },
            default: [],
          },
          // No ssh section: this gateway reaches the broker's Redis directly, as on one machine.
          ssh: {
            type: 'object',
            additionalProperties: false,
            required: ['host', 'hostKeyFingerprint', 'privateKey', 'remotePort'],
            properties: {
              host: { type: 'string', minLength: 1, maxLength: 253 },
              port: { type: 'integer', minimum: 1, maximum: 65535, default: 22 },
              user: { type: 'string', pattern: '^[a-z_][a-z0-9_-]{0,31}$', default: 'nonstop-tunnel' },
              // As `ssh-keygen -l` prints it: SHA256 and unpadded base64.
              hostKeyFingerprint: { type: 'string', pattern: '^SHA256:[A-Za-z0-9+/]{43}$' },
              privateKey: pathSchema,
              // The gateway loopback port this broker listens on (its permitlisten).
              remotePort: { type: 'integer', minimum: 1, maximum: 65535 },
              // The knock that opens the gateway's SSH port before each connection. Absent:
              // no knock (an SSH port open to the broker's address by other means).
              knock: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  delayMs: { type: 'integer', minimum: 0, maximum: 10000, default: 30 },
                  sequence: staticSequenceSchema,
                  // Single-packet authorization (fwknop's format) to the gateway guard's SPA port.
                  spa: {
                    type: 'object',
                    additionalProperties: false,
                    required: ['keyFile'],
                    properties: {
                      port: { type: 'integer', minimum: 1, maximum: 65535, default: 62201 },
                      // This broker's keys for that gateway as `nonstop spa-keygen` (or
                      // `fwknop --key-gen`) writes them, alone in a file (mode 0600).
                      keyFile: pathSchema,
                    },
                  },
                  rotating: {
                    type: 'object',
                    additionalProperties: false,
                    required: ['client', 'secretFile'],
                    properties: {
                      ...rotationSchema.properties,
                      // This broker's name in the guard's rotating.clients.
                      client: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,62}$' },
                      // The secret `nonstop knock-secret` made, alone in a file (mode 0600).
                      secretFile: pathSchema,
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
    tunnels: {
      type: 'object',
      additionalProperties: false,
      properties: {
        connectTimeoutMs: { type: 'integer', minimum: 500, maximum: 120000, default: 10000 },
        // Dead gateway detection: interval × count.
        keepaliveIntervalMs: { type: 'integer', minimum: 500, maximum: 300000, default: 5000 },
        keepaliveCountMax: { type: 'integer', minimum: 1, maximum: 100, default: 3 },
        backoffInitialMs: { type: 'integer', minimum: 10, maximum: 600000, default: 500 },
        backoffMaxMs: { type: 'integer', minimum: 10, maximum: 3600000, default: 30000 },
        // At shutdown, after the last reply is pushed, before the tunnels close.
        drainMs: { type: 'integer', minimum: 0, maximum: 60000, default: 1000 },
        // Channels (= Redis connections) one gateway may hold open through its tunnel; more are
        // refused. A gateway process needs two (its queue and its reply connection; three with
        // ACME, whose challenge store has its own). Each costs
        // a file descriptor and, at worst (a stalled reader on either side), ~4.5 MiB of memory
        // (ssh2's 2 MiB window and 2 MiB read buffer, 256 KiB pumped each way): size the
        // broker's LimitNOFILE and MemoryMax from maxChannels × gateways.
        maxChannels: { type: 'integer', minimum: 1, maximum: 4096, default: 32 },
        // What one gateway's sshd may make the broker parse, each a token bucket (a rate per
        // second and a burst): over budget, the broker stops reading that tunnel until it has
        // refilled (broker/tunnel-budget.ts). Channel opens: an honest gateway opens its few
        // Redis connections at start and again after a drop, well within the burst. Messages
        // (every SSH message the gateway sends): one request costs an honest gateway a few, and
        // 20000 a second is several times what a broker can serve; a flood of tiny messages is
        // held to it.
        channelOpensPerSecond: { type: 'integer', minimum: 1, maximum: 100000, default: 50 },
        channelOpenBurst: { type: 'integer', minimum: 1, maximum: 100000, default: 100 },
        messagesPerSecond: { type: 'integer', minimum: 100, maximum: 10000000, default: 20000 },
        messageBurst: { type: 'integer', minimum: 100, maximum: 10000000, default: 40000 },
      },
      default: {},
    },
    status: {
      type: 'object',
      additionalProperties: false,
      required: ['port'],
      properties: {
        // Loopback only: the broker listens on nothing reachable from elsewhere.
        host: {
          type: 'string',
          pattern:
            '^(127\\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){2}|::1|localhost)$',
          default: '127.0.0.1',
        },
        port: { type: 'integer', minimum: 0, maximum: 65535 },
      },
    },
    // Each gateway's worker and tunnel in a process of its own (broker/cells.ts): what one
    // gateway makes the broker do runs on its own event loop, and a cell that runs out of heap
    // dies alone. Off: one process for all, what a broker of many quiet gateways may prefer
    // (an idle cell costs about 60 MiB of PSS; the parent 20 to 40 MiB).
    cells: {
      type: 'object',
      additionalProperties: false,
      properties: {
        perGateway: { type: 'boolean', default: true },
        // V8's heap limit of each cell; past it the cell dies and is started again.
        maxHeapMb: { type: 'integer', minimum: 64, maximum: 16384, default: 256 },
      },
      default: {},
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
        // Further core hosts on the same database: requests are spread across url and these,
        // and an attempt that finds one down goes to another at once.
        peers: {
          type: 'array',
          maxItems: 15,
          uniqueItems: true,
          items: { type: 'string', pattern: '^https://[^/]+/?$', maxLength: 512 },
          default: [],
        },
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
  readonly redisServer: RedisServerLimits;
  readonly gateways: readonly GatewayLink[];
  readonly tunnels: TunnelOptions;
  readonly status?: { readonly host: string; readonly port: number };
  readonly cells: { readonly perGateway: boolean; readonly maxHeapMb: number };
  readonly concurrency: number;
  readonly lockDurationMs: number;
  readonly stalledIntervalMs: number;
  readonly core: {
    readonly url: string;
    readonly peers: readonly string[];
    readonly ca: string;
    readonly cert: string;
    readonly key: string;
    readonly serverName?: string;
    readonly maxSockets: number;
    readonly attemptTimeoutMs: number;
  };
}

export interface GatewaySsh {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly hostKeyFingerprint: string;
  readonly privateKey: string;
  readonly remotePort: number;
  readonly knock?: GatewayKnock;
}

export interface GatewayKnock {
  readonly delayMs: number;
  readonly sequence?: readonly string[];
  readonly spa?: { readonly port: number; readonly keyFile: string };
  readonly rotating?: RotationParams & { readonly client: string; readonly secretFile: string };
}

export interface GatewayLink {
  readonly id: string;
  readonly redis?: GatewayRedisEndpoint;
  /** The gateway's replyTimeoutMs, limits.maxBodyBytes and forwardHeaders. */
  readonly replyTimeoutMs: number;
  readonly maxBodyBytes: number;
  readonly forwardHeaders: readonly string[];
  /** The names it serves: whose ACME challenges it may publish and answer (the schema's default: none). */
  readonly names?: readonly string[];
  readonly ssh?: GatewaySsh;
}

export interface GatewayRedisEndpoint {
  readonly host?: string;
  readonly port?: number;
  readonly username?: string;
  readonly passwordFile?: string;
}

export interface RedisServerLimits {
  readonly maxMemoryMb: number;
  readonly maxClients: number;
  readonly maxJobBytes: number;
  readonly idleTimeoutSeconds: number;
  /** systemd CPUWeight of its unit (1–99). */
  readonly cpuWeight: number;
  /** systemd CPUQuota of its unit, percent of one CPU; null: none. */
  readonly cpuQuotaPercent: number | null;
}

/** The Redis of one gateway: its own endpoint, the rest (prefix, …) from the top-level `redis`. */
export function gatewayRedis(config: BrokerConfig, gatewayId: string): RedisConfig {
  const link = config.gateways.find((g) => g.id === gatewayId);
  if (link === undefined) throw new Error(`broker ${config.id} serves no gateway "${gatewayId}"`);
  const own = link.redis ?? {};
  const username = own.username ?? config.redis.username;
  const passwordFile = own.passwordFile ?? config.redis.passwordFile;
  return {
    host: own.host ?? config.redis.host,
    port: own.port ?? config.redis.port,
    prefix: config.redis.prefix,
    ...(username === undefined ? {} : { username }),
    ...(passwordFile === undefined ? {} : { passwordFile }),
  };
}

export interface TunnelOptions {
  readonly connectTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
  readonly keepaliveCountMax: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly drainMs: number;
  readonly maxChannels: number;
  readonly channelOpensPerSecond: number;
  readonly channelOpenBurst: number;
  readonly messagesPerSecond: number;
  readonly messageBurst: number;
}
