// The world's daemon configs: built by the deployed builders (config/render/), from the world's
// facts (ids, addresses, ports, fingerprints, secrets, its folders), with what a namespace world
// must change and nothing else. Each change is declared below with its reason; the Ansible
// converge test compares these documents with what the roles wrote, key by key, and
// test/unit/host-configs.test.ts checks that the list is neither short nor stale.
import { join } from 'node:path';
import { DEFAULT_STATUS_PORT, type BrokerGatewayInput, type BrokerInput } from '../config/render/broker.js';
import type { CoreInput, CorePostgres } from '../config/render/core.js';
import { DEFAULT_METRICS_PORT, type AcmeInput, type GatewayInput } from '../config/render/gateway.js';
import type { GuardInput } from '../config/render/guard.js';
import { packageRoot } from './world.js';

/**
 * Where the world's configs may differ from deployed ones: dotted paths (`[*]`: every item) of
 * the effective documents (defaults filled), each with the reason. A path covers what is under it.
 */
export const WORLD_CONFIG_DIFFERENCES = {
  gateway: {
    'http.mode': "the world's clients and readiness checks use plain HTTP too: it serves, not redirects",
    'limits.ratePerSecond': 'load tests and benchmarks send everything from one source address (inet)',
    'limits.rateBurst': 'load tests and benchmarks send everything from one source address (inet)',
    static:
      "the world serves the sample site's stylesheet from the repository; a deployment names its own folders (gateway_static)",
  },
  guard: {
    stateFile:
      'the world’s hosts share one filesystem: each guard keeps its journal in its own host folder, not /var/lib',
  },
  broker: {
    'gateways[*].ssh.user': 'the world runs as root, and root is its gateways’ tunnel user',
    'tunnels.backoffInitialMs': 'chaos tests need a tunnel back within a second of its gateway',
    'tunnels.backoffMaxMs': 'chaos tests need a tunnel back within a second of its gateway',
    'tunnels.keepaliveIntervalMs': 'a killed sshd must be noticed within seconds, not 15',
  },
  core: {
    'database.url':
      "the world's PostgreSQL (corePostgres, world/postgres.ts) has its socket in the world's folder; without it, no server: the embedded database in the core's folder",
    'database.dataDir': "no PostgreSQL server in the world: the embedded database in the core's folder",
    upstreams:
      'the world runs the sample site (core/app/guestbook) on the core host; a deployment names its own',
  },
} as const satisfies Record<'gateway' | 'guard' | 'broker' | 'core', Record<string, string>>;

/** The world's own tunables (per test); none of them is set in the default world. */
export interface WorldGatewayOptions {
  readonly limits?: GatewayInput['limits'];
  readonly replyTimeoutMs?: number;
  /**
   * Its certificate by ACME (the world's PKI files are served until the first one); the state
   * folder is under the gateway's own unless named (the deployed one is the unit's, on the machine).
   */
  readonly acme?: AcmeInput;
  /** 443 in PROXY protocol mode, from the trusted proxies of `clientAddress`. */
  readonly httpsProxyProtocol?: boolean;
  readonly clientAddress?: GatewayInput['clientAddress'];
}

/** The deployed default (config/render/broker.ts): the world's brokers are the deployed ones here. */
export const WORLD_STATUS_PORT = DEFAULT_STATUS_PORT;
/** The deployed default (config/render/gateway.ts): each gateway's metrics on its loopback. */
export const WORLD_METRICS_PORT = DEFAULT_METRICS_PORT;

/** A gateway's facts: its id, its folder, each broker's tunnel port on it. */
export type GatewayFacts = Pick<GatewayInput, 'id' | 'configDir' | 'tunnels'>;

/** The sample site's stylesheet, which every gateway of the world serves under /assets/. */
export const GUESTBOOK_ASSETS = { path: '/assets/', dir: 'core/app/guestbook/static' } as const;

export function worldGatewayInput(facts: GatewayFacts, options: WorldGatewayOptions = {}): GatewayInput {
  return {
    ...facts,
    httpMode: 'serve',
    static: [{ path: GUESTBOOK_ASSETS.path, dir: join(packageRoot(), GUESTBOOK_ASSETS.dir) }],
    limits: { ratePerSecond: 1_000_000, rateBurst: 1_000_000, ...options.limits },
    ...(options.replyTimeoutMs === undefined ? {} : { replyTimeoutMs: options.replyTimeoutMs }),
    ...(options.acme === undefined
      ? {}
      : { acme: { stateDir: join(facts.configDir, 'acme'), ...options.acme } }),
    ...(options.httpsProxyProtocol === undefined ? {} : { httpsProxyProtocol: options.httpsProxyProtocol }),
    ...(options.clientAddress === undefined ? {} : { clientAddress: options.clientAddress }),
  };
}

/** A guard is the deployed one but for where its journal is (its host's folder, `dir`). */
export function worldGuardInput(facts: GuardInput, dir: string): GuardInput {
  return { ...facts, stateFile: join(dir, 'guard-state') };
}

export type BrokerFacts = Pick<BrokerInput, 'id' | 'configDir' | 'core' | 'rotation'> & {
  readonly gateways: readonly Omit<BrokerGatewayInput, 'tunnelUser'>[];
};

export function worldBrokerInput(facts: BrokerFacts): BrokerInput {
  return {
    ...facts,
    gateways: facts.gateways.map((g) => ({ ...g, tunnelUser: 'root' })),
    tunnels: { backoffInitialMs: 100, backoffMaxMs: 1000, keepaliveIntervalMs: 1000 },
  };
}

export type CoreFacts = Omit<CoreInput, 'database'>;

/** Where the sample site listens on the core host (loopback: only the core calls it). */
export const GUESTBOOK_PORT = 3000;

/** `postgres`: the world's PostgreSQL server (world/postgres.ts); none, the embedded database. */
export function worldCoreInput(facts: CoreFacts, postgres?: CorePostgres): CoreInput {
  return {
    ...facts,
    database: postgres === undefined ? { embedded: { dataDir: join(facts.configDir, 'db') } } : { postgres },
    upstreams: [{ url: `http://127.0.0.1:${GUESTBOOK_PORT}`, routes: ['site.*'] }],
  };
}
