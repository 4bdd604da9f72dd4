// A broker's broker.json from the facts of its deployment: `nonstop render broker` (Ansible) and
// the test world both build it here. Decided once: each gateway's own Redis on this broker's
// loopback (the n-th gateway on the first port + n) with the worker's password from
// `nonstop redis-acl`'s folder, a pinned host key and a rotating knock before every tunnel, the
// broker's mutual-TLS files for the core.
import { join } from 'node:path';
import { DEFAULT_WORKER_USER } from '../redis-users.js';
import type { BrokerConfig, RedisServerLimits, TunnelOptions } from '../schemas/broker.js';
import type { RotationParams } from '../schemas/knock-common.js';
import { checkedDocument, optional } from './document.js';

export interface BrokerGatewayInput {
  readonly id: string;
  /** Its public address (a name or an IP): where this broker knocks and dials. */
  readonly address: string;
  readonly sshPort?: number;
  /** Default nonstop-tunnel (the gateway role's tunnel user). */
  readonly tunnelUser?: string;
  /** SHA256:… of its SSH host key, as `ssh-keygen -l` prints it. */
  readonly hostKeyFingerprint: string;
  /** This broker's loopback port on that gateway (its permitlisten). */
  readonly remotePort: number;
  /** Its Redis on this broker; default redisFirstPort + its index. */
  readonly redisPort?: number;
  /**
   * Knock before each connection: true or "rotating" (the default), a rotating sequence from the
   * secret in <configDir>/knock/<id>.secret; "spa", one SPA packet with the keys in
   * <configDir>/knock/<id>.spa (`nonstop spa-keygen`); false, no knock.
   */
  readonly knock?: boolean | 'rotating' | 'spa';
  /** That gateway's replyTimeoutMs and limits.maxBodyBytes, when not the defaults. */
  readonly replyTimeoutMs?: number;
  readonly maxBodyBytes?: number;
  /** The names it serves: whose ACME challenges the brokers relay to it and from it. */
  readonly names?: readonly string[];
}

export interface BrokerInput {
  readonly id: string;
  /** The role's folder: routes.json, tls/{ca,broker}.crt, tls/broker.key, ssh/id_ed25519, knock/. */
  readonly configDir: string;
  readonly gateways: readonly BrokerGatewayInput[];
  /** `peers`: further core hosts on the same database (the broker spreads and fails over). */
  readonly core: { readonly url: string; readonly peers?: readonly string[]; readonly serverName?: string };
  /** Where `nonstop redis-acl` writes each gateway's Redis (<redisDir>/<gateway>/); default <configDir>/redis. */
  readonly redisDir?: string;
  readonly redisFirstPort?: number;
  readonly redisWorkerUser?: string;
  readonly redisPrefix?: string;
  readonly redisServer?: Partial<RedisServerLimits>;
  readonly rotation?: Partial<RotationParams>;
  readonly cells?: Partial<BrokerConfig['cells']>;
  readonly concurrency?: number;
  readonly tunnels?: Partial<TunnelOptions>;
  /** The status listener's port on loopback (default 9100); null: none. */
  readonly statusPort?: number | null;
}

/** Where `nonstop status` and a Prometheus on the broker find its status listener. */
export const DEFAULT_STATUS_PORT = 9100;

export function brokerFiles(configDir: string) {
  return {
    routes: join(configDir, 'routes.json'),
    ca: join(configDir, 'tls', 'ca.crt'),
    cert: join(configDir, 'tls', 'broker.crt'),
    key: join(configDir, 'tls', 'broker.key'),
    sshKey: join(configDir, 'ssh', 'id_ed25519'),
    knockSecret: (gatewayId: string) => join(configDir, 'knock', `${gatewayId}.secret`),
    spaKeys: (gatewayId: string) => join(configDir, 'knock', `${gatewayId}.spa`),
  } as const;
}

export const DEFAULT_REDIS_FIRST_PORT = 6401;

export function brokerDocument(input: BrokerInput) {
  const statusPort = input.statusPort === undefined ? DEFAULT_STATUS_PORT : input.statusPort;
  const files = brokerFiles(input.configDir);
  const redisDir = input.redisDir ?? join(input.configDir, 'redis');
  const firstPort = input.redisFirstPort ?? DEFAULT_REDIS_FIRST_PORT;
  const worker = input.redisWorkerUser ?? DEFAULT_WORKER_USER;
  return checkedDocument('broker', `broker.json of ${input.id}`, {
    kind: 'broker',
    id: input.id,
    routes: files.routes,
    // Loopback only: a gateway reaches its Redis through its tunnel, nothing else reaches it.
    redis: { host: '127.0.0.1', port: firstPort, username: worker, ...optional('prefix', input.redisPrefix) },
    ...optional('redisServer', input.redisServer),
    gateways: input.gateways.map((gw, i) => ({
      id: gw.id,
      ...optional('replyTimeoutMs', gw.replyTimeoutMs),
      ...optional('maxBodyBytes', gw.maxBodyBytes),
      ...optional('names', gw.names),
      redis: {
        port: gw.redisPort ?? firstPort + i,
        passwordFile: join(redisDir, gw.id, `${worker}.password`),
      },
      ssh: {
        host: gw.address,
        port: gw.sshPort ?? 22,
        user: gw.tunnelUser ?? 'nonstop-tunnel',
        hostKeyFingerprint: gw.hostKeyFingerprint,
        privateKey: files.sshKey,
        remotePort: gw.remotePort,
        ...knockOf(gw, input, files),
      },
    })),
    ...optional('cells', input.cells),
    ...optional('concurrency', input.concurrency),
    ...optional('tunnels', input.tunnels),
    ...(statusPort === null ? {} : { status: { host: '127.0.0.1', port: statusPort } }),
    core: {
      url: input.core.url,
      ...(input.core.peers === undefined || input.core.peers.length === 0 ? {} : { peers: input.core.peers }),
      ca: files.ca,
      cert: files.cert,
      key: files.key,
      ...optional('serverName', input.core.serverName),
    },
  } as const);
}

/** How this broker knocks on one gateway: `ssh.knock` of its entry, or nothing. */
function knockOf(
  gw: BrokerGatewayInput,
  input: BrokerInput,
  files: ReturnType<typeof brokerFiles>,
): {
  readonly knock?: {
    readonly spa?: { readonly keyFile: string };
    readonly rotating?: Partial<RotationParams> & { readonly client: string; readonly secretFile: string };
  };
} {
  if (gw.knock === false) return {};
  if (gw.knock === 'spa') return { knock: { spa: { keyFile: files.spaKeys(gw.id) } } };
  return {
    knock: { rotating: { client: input.id, secretFile: files.knockSecret(gw.id), ...input.rotation } },
  };
}

export type BrokerDocument = ReturnType<typeof brokerDocument>;
