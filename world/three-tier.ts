// The whole system in network namespaces: an internet host, gateways (nftables guard with
// rotating knocks, real sshd, `nonstop gateway` on 80/443), brokers (one Redis per gateway,
// started from the redis.conf and ACL `nonstop redis-acl` renders, storing nothing; SSH tunnels
// out to every gateway, listening on nothing) and a core (embedded database, or a real
// PostgreSQL server in its namespace with `corePostgres`) on a private segment. `nonstop demo`, the chaos and attack suites and the benchmarks
// all drive this one world. Every process runs by pid inside the world; `close()` leaves nothing.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ADMIN_USER, DEFAULT_WORKER_USER, gatewayUser, newPassword } from '../broker/redis-acl.js';
import { renderBrokerRedis, type WrittenRedisServer } from '../broker/redis-config.js';
import type { RedisBudget } from '../broker/redis-unit.js';
import { validateConfig } from '../config/load.js';
import { brokerDocument, brokerFiles } from '../config/render/broker.js';
import { coreDocument, coreFiles } from '../config/render/core.js';
import { DUAL_STACK, gatewayDocument, gatewayFiles, type AcmeInput } from '../config/render/gateway.js';
import { guardDocument, type GuardInput, type SpaClient } from '../config/render/guard.js';
import { knockProfilesDocument } from '../config/render/knock.js';
import { writeIdempotencySecret } from '../gateway/idempotency-secret.js';
import { renderSshdConfig, renderTunnelAuthorizedKeys, type TunnelBroker } from '../gateway/sshd-config.js';
import { ensurePrivsepDir, worldGatewaySshd } from './gateway-sshd.js';
import {
  GUESTBOOK_PORT,
  WORLD_STATUS_PORT,
  worldBrokerInput,
  worldCoreInput,
  worldGatewayInput,
  worldGuardInput,
} from './host-configs.js';
import { newKnockSecret } from '../knock/rotating.js';
import { formatSpaKeyFile, generateSpaKeys } from '../knock/spa.js';
import { generatePki } from '../lib/pki.js';
import { peerNice, type BudgetCgroup } from './cgroup.js';
import { startWorldPostgres, type WorldPostgres } from './postgres.js';
import { descendants, packageRoot, World, type Host, type HostProcess } from './world.js';

const run = promisify(execFile);

export const CLI = 'dist/cli/index.js';
export const CLIENT = 'dist/world/client.js';
const ROUTES = 'config/examples/routes.json';
/** The sample web site: its routes join the notes API's in the world's route table. */
const GUESTBOOK = 'core/app/guestbook/server.py';
const GUESTBOOK_ROUTES = 'core/app/guestbook/routes.json';
/** The public name every gateway serves the sample site under (in their certificates), as DNS
 * with an address per gateway would: a browser reaches it through whichever it is pointed at. */
export const SITE_NAME = 'www.example.net';
const CORE_PORT = 8443;
const FIRST_TUNNEL_PORT = 16001;
const ROTATION = { portMin: 20000, portMax: 29999, length: 4, stepSeconds: 30 } as const;
export const ADMIN_CLIENT = 'admin';

export interface ThreeTierOptions {
  /** Number of gateways (ids gw1, gw2, …). Default 2. */
  readonly gateways?: number;
  /** Number of brokers (ids b1, b2, …). Default 2. */
  readonly brokers?: number;
  /** Merged into each gateway's `limits`; rate limits are lifted by default. */
  readonly gatewayLimits?: Readonly<Record<string, number>>;
  readonly replyTimeoutMs?: number;
  /**
   * The core on a real PostgreSQL server in its namespace (world/postgres.ts), as deployed,
   * instead of the embedded database. Default false.
   */
  readonly corePostgres?: boolean;
  /** With corePostgres: its data folder on a tmpfs of this many MiB, a disk a test can fill. */
  readonly corePostgresDiskMb?: number;
  /** With corePostgres: a synchronous standby the test can promote (world/postgres.ts). */
  readonly corePostgresStandby?: boolean;
  /**
   * A second core host, `core2` on the private segment, on the same PostgreSQL (needs
   * corePostgres): the brokers list it in `core.peers`. Its sample site keeps a database of
   * its own. Default false.
   */
  readonly secondCore?: boolean;
  /**
   * How brokers open the gateways' SSH: "rotating" sequences (the default), or "spa", one
   * single-packet-authorization datagram (fwknop's format) from keys per broker and gateway.
   * Either way the admin knocks with a rotating profile, and in "spa" also holds SPA keys of
   * its own per gateway (`ThreeTier.adminSpaKeys`).
   */
  readonly brokerKnock?: 'rotating' | 'spa';
  /**
   * Certificates by ACME for the gateways it names (default: none, the world's PKI files only).
   * Called once every host has its addresses, before any daemon starts (an ACME CA for inet can
   * be prepared here); what the function it resolves to returns for a gateway id is that
   * gateway's ACME input (undefined: none).
   */
  readonly gatewayAcme?: (hosts: WorldHosts) => Promise<(gatewayId: string) => AcmeInput | undefined>;
  /**
   * Every gateway's 443 takes PROXY protocol headers, and from inet only (a load balancer in front):
   * `clientAddress.trustedProxies` is inet's addresses. Default off, as deployed.
   */
  readonly gatewayProxyProtocolFromInet?: boolean;
  /** Called with a line for each step of the bring-up. */
  readonly progress?: (step: string) => void;
}

/** The world's hosts, by role, once they have their addresses. */
export interface WorldHosts {
  readonly inet: Host;
  readonly gateways: ReadonlyMap<string, Host>;
}

export interface SshKey {
  readonly privateKeyFile: string;
  readonly publicKey: string;
  /** SHA256:… as `ssh-keygen -l` prints it. */
  readonly fingerprint: string;
}

export interface GatewayNode {
  readonly id: string;
  readonly host: Host;
  readonly ip: string;
  readonly httpUrl: string;
  readonly httpsUrl: string;
  /** Its public IPv6 address and URLs: 80, 443 and SSH listen on both families. */
  readonly ip6: string;
  readonly httpUrl6: string;
  readonly httpsUrl6: string;
  readonly dir: string;
  readonly sshPort: number;
  readonly hostKey: SshKey;
  readonly redisUser: string;
  readonly redisPasswordFile: string;
  /** Loopback ports on the gateway that reach each broker's Redis through its tunnel. */
  readonly remotePorts: Readonly<Record<string, number>>;
  readonly configFile: string;
  readonly sshdConfig: string;
  readonly guardConfig: string;
  /** What its guard.json is rendered from (config/render/guard.ts), as Ansible's inventory gives it. */
  guardInput: GuardInput;
  /** The tunnel user's authorized_keys, and the broker keys it is rendered from. */
  readonly tunnelAuthorizedKeys: string;
  tunnelBrokers: readonly TunnelBroker[];
  sshd: HostProcess;
  guard: HostProcess;
  gateway: HostProcess;
}

/** One gateway's own Redis on one broker (loopback only, nothing on disk). */
export interface RedisNode {
  readonly gatewayId: string;
  readonly port: number;
  /** The redis.conf it was started from (`redis-server <configFile>`). */
  readonly configFile: string;
  readonly aclFile: string;
  /** Its ACL's admin user (all keys; nothing that writes to disk), for operators and ledgers. */
  readonly adminUser: string;
  readonly adminPasswordFile: string;
  /** The broker's worker user in this Redis (its password opens this Redis only). */
  readonly workerUser: string;
  readonly workerPasswordFile: string;
  /** The CPU and memory budget its unit drop-in sets (`nonstop redis-acl`'s unit.conf). */
  readonly budget: RedisBudget;
  /**
   * The cgroup holding it with that budget (world/cgroup.ts), made afresh at each start and
   * removed when it exits; null: the budget is not applied (no writable cgroup controller).
   */
  cgroup: BudgetCgroup | null;
  process: HostProcess;
}

export interface BrokerNode {
  readonly id: string;
  readonly host: Host;
  readonly dir: string;
  readonly statusPort: number;
  readonly configFile: string;
  /** Each gateway's own Redis on this broker, by gateway id. */
  readonly redis: Readonly<Record<string, RedisNode>>;
  readonly sshKey: SshKey;
  /** The address family its tunnels dial the gateways on (and knock them over). */
  readonly tunnelFamily: 4 | 6;
  process: HostProcess;
}

export interface CoreNode {
  readonly host: Host;
  readonly ip: string;
  readonly port: number;
  readonly url: string;
  readonly configFile: string;
  /** Where its database keeps its data: the embedded database's folder, or PostgreSQL's cluster. */
  readonly dataDir: string;
  /** Its PostgreSQL server (`corePostgres`), or null on the embedded database. */
  readonly postgres: WorldPostgres | null;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  process: HostProcess;
  /** The sample web site (core/app/guestbook), the core's upstream for the site.* routes. */
  readonly site: HostProcess;
}

export interface ClientRequest {
  readonly method?: string;
  readonly path: string;
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly https?: boolean;
  /** To the gateway's IPv6 address (6) or its IPv4 address (4, the default). */
  readonly family?: 4 | 6;
  readonly timeoutMs?: number;
}

export interface ClientAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly ms: number;
  readonly error?: string;
}

export class ThreeTier {
  /** Where the admin knock profiles live (`nonstop knock GW --profile admin-<gw> --profiles FILE`). */
  readonly adminKnockProfiles: string;
  /** The public CA that signed the gateways' HTTPS certificates. */
  readonly publicCaFile: string;
  /** With brokerKnock "spa": the admin's SPA key file per gateway (`nonstop knock --spa --spa-keys`). */
  readonly adminSpaKeys: Readonly<Record<string, string>>;
  readonly startedAt = Date.now();

  /** Use `ThreeTier.start()`. */
  constructor(
    readonly world: World,
    readonly inet: Host,
    readonly gateways: readonly GatewayNode[],
    readonly brokers: readonly BrokerNode[],
    /** Every core host: `core`, then `core2` with secondCore. */
    readonly cores: readonly CoreNode[],
    files: {
      adminKnockProfiles: string;
      publicCaFile: string;
      adminSpaKeys: Readonly<Record<string, string>>;
    },
  ) {
    this.adminKnockProfiles = files.adminKnockProfiles;
    this.adminSpaKeys = files.adminSpaKeys;
    this.publicCaFile = files.publicCaFile;
  }

  get dir(): string {
    return this.world.dir;
  }

  /** Builds the world and resolves once every tunnel is up and every gateway serves a request. */
  static async start(options: ThreeTierOptions = {}): Promise<ThreeTier> {
    const world = await World.create();
    try {
      const tt = await build(world, options);
      options.progress?.('waiting for every broker to tunnel into every gateway');
      await tt.waitUntilServing(60_000);
      return tt;
    } catch (err) {
      await world.close();
      throw err;
    }
  }

  gateway(id: string): GatewayNode {
    const g = this.gateways.find((x) => x.id === id);
    if (g === undefined) throw new Error(`no gateway ${id}`);
    return g;
  }

  broker(id: string): BrokerNode {
    const b = this.brokers.find((x) => x.id === id);
    if (b === undefined) throw new Error(`no broker ${id}`);
    return b;
  }

  /** Sends requests from `inet` through one gateway, in order, and returns the answers. */
  async requests(gatewayId: string, requests: readonly ClientRequest[]): Promise<ClientAnswer[]> {
    const g = this.gateway(gatewayId);
    const spec = requests.map((r) => ({
      method: r.method ?? 'GET',
      url: `${baseUrl(g, r)}${r.path}`,
      body: r.body,
      headers: r.headers ?? {},
      timeoutMs: r.timeoutMs ?? 15_000,
    }));
    const r = await this.inet.runNode(CLIENT, [JSON.stringify({ ca: this.publicCaFile, requests: spec })], {
      timeoutMs: 60_000 + spec.reduce((sum, s) => sum + s.timeoutMs, 0),
    });
    const answers = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as ClientAnswer);
    if (answers.length !== requests.length)
      throw new Error(`the client in inet answered ${answers.length} of ${requests.length}: ${r.stderr}`);
    return answers;
  }

  async request(gatewayId: string, request: ClientRequest): Promise<ClientAnswer> {
    const [answer] = await this.requests(gatewayId, [request]);
    return answer!;
  }

  /** Every broker's tunnel listens on every gateway, and a request round-trips through each. */
  async waitUntilServing(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    let why = '';
    while (Date.now() < end) {
      why = await this.#notServing();
      if (why === '') return;
      await sleep(200);
    }
    throw new Error(`the world did not serve within ${timeoutMs} ms: ${why}`);
  }

  async #notServing(): Promise<string> {
    for (const g of this.gateways) {
      const listening = await listeningPorts(g.host);
      for (const b of this.brokers) {
        if (!b.process.running) continue;
        if (!listening.has(g.remotePorts[b.id]!)) return `${b.id} has no tunnel into ${g.id} yet`;
      }
      const answer = await this.request(g.id, { path: '/notes?limit=1', timeoutMs: 5000 });
      if (answer.status !== 200) return `${g.id} answered ${answer.status} ${answer.error ?? answer.body}`;
    }
    return '';
  }

  // Faults and restarts. Each acts on processes of this world by pid and waits until done.

  /** SIGKILL of a broker and of its cells, as when its machine or its unit dies. */
  async killBroker(id: string): Promise<void> {
    const b = this.broker(id);
    sigkillTree(b.process.pid);
    await b.process.exited;
  }

  /** Starts a broker (and so its cells); `env` is added to their environment (world/faketime.ts). */
  startBroker(id: string, env: NodeJS.ProcessEnv = {}): HostProcess {
    const b = this.broker(id);
    b.process = b.host.node(CLI, ['broker', '--config', b.configFile], env);
    return b.process;
  }

  /** SIGKILL of sshd and of every session it forked: the tunnels die without a goodbye. */
  async killSshd(gatewayId: string): Promise<void> {
    const g = this.gateway(gatewayId);
    sigkillTree(g.sshd.pid);
    await g.sshd.exited;
  }

  async startSshd(gatewayId: string): Promise<void> {
    const g = this.gateway(gatewayId);
    g.sshd = await startSshd(g.host, g.sshdConfig);
  }

  /**
   * Renders a gateway's guard.json again from `input` (as Ansible's "Configure the knock guard"
   * does) and restarts its guard (the "Restart guard" handler): its table stays loaded meanwhile,
   * so SSH stays filtered and established tunnels carry on.
   */
  async reconfigureGuard(gatewayId: string, input: GuardInput): Promise<void> {
    const g = this.gateway(gatewayId);
    writeJson(g.guardConfig, guardDocument(worldGuardInput(input, dirname(g.guardConfig))));
    g.guardInput = input;
    await g.guard.stop(5000);
    g.guard = await startGuard(g.host, g.guardConfig);
  }

  /**
   * Renders a gateway's tunnel authorized_keys again (Ansible's "Allow broker keys a single
   * reverse forward"): sshd reads it at each login, so nothing is restarted.
   */
  setTunnelKeys(gatewayId: string, brokers: readonly TunnelBroker[]): void {
    const g = this.gateway(gatewayId);
    writeFileSync(g.tunnelAuthorizedKeys, renderTunnelAuthorizedKeys(brokers), { mode: 0o600 });
    g.tunnelBrokers = brokers;
  }

  /**
   * Runs `nonstop redis-acl --apply-passwords` on a broker host, as Ansible does after a
   * password-only ACL change: every Redis there takes its users' passwords live.
   */
  async applyRedisPasswords(brokerId: string): Promise<string> {
    const b = this.broker(brokerId);
    const r = await b.host.runNode(CLI, [
      'redis-acl',
      '--config',
      b.configFile,
      '--out',
      join(b.dir, 'redis'),
      '--apply-passwords',
    ]);
    if (r.code !== 0) throw new Error(`redis-acl --apply-passwords on ${brokerId}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /**
   * Ends one broker's SSH session into one gateway from the gateway's side (its sshd processes
   * for that connection, SIGKILL), as a dropped connection would: the broker knocks and connects
   * again with what its files hold now, while the other brokers' tunnels carry the traffic.
   * Resolves with the pids it killed.
   */
  async dropTunnel(gatewayId: string, brokerId: string): Promise<number[]> {
    const g = this.gateway(gatewayId);
    const b = this.broker(brokerId);
    const peer = b.tunnelFamily === 6 ? `[${b.host.ip6}]` : b.host.ip4;
    const out = await g.host.check('ss', ['-tnpH', 'state', 'established', '( sport = :22 )']);
    const pids = new Set<number>();
    for (const line of out.split('\n')) {
      const cols = line.trim().split(/\s+/);
      // Recv-Q Send-Q Local Peer Process (no State column when a state is given).
      const remote = cols[3] ?? '';
      if (remote.slice(0, remote.lastIndexOf(':')) !== peer) continue;
      for (const m of line.matchAll(/pid=(\d+)/g)) pids.add(Number(m[1]));
    }
    if (pids.size === 0) throw new Error(`${brokerId} has no SSH session into ${gatewayId}`);
    for (const pid of pids) sigkillTree(pid);
    return [...pids];
  }

  async restartGateway(gatewayId: string): Promise<void> {
    const g = this.gateway(gatewayId);
    await g.gateway.stop(5000);
    g.gateway = await startGateway(g.host, g.configFile);
  }

  /** The first core host (the only one unless secondCore). */
  get core(): CoreNode {
    return this.cores[0]!;
  }

  /** SIGHUP to a core: it reads its TLS files again for new connections (README, "Rotating credentials"). */
  async reloadCoreTls(core: CoreNode = this.core): Promise<void> {
    const from = core.process.lines.length;
    core.process.child.kill('SIGHUP');
    const end = Date.now() + 10_000;
    for (;;) {
      const said = core.process.lines.slice(from);
      if (said.some((l) => l.includes('TLS files reloaded'))) return;
      const failed = said.find((l) => l.includes('TLS reload failed'));
      if (failed !== undefined) throw new Error(`the core kept its TLS files: ${failed}`);
      if (Date.now() > end) throw new Error('the core did not say it reloaded its TLS files');
      await sleep(50);
    }
  }

  async restartCore(core: CoreNode = this.core): Promise<void> {
    await core.process.stop(10_000);
    core.process = await startCore(core.host, core.configFile);
  }

  redis(brokerId: string, gatewayId: string): RedisNode {
    const r = this.broker(brokerId).redis[gatewayId];
    if (r === undefined) throw new Error(`broker ${brokerId} has no Redis for gateway ${gatewayId}`);
    return r;
  }

  /** SIGKILL of one gateway's Redis on a broker: what it held (nothing on disk) is gone. */
  async killRedis(brokerId: string, gatewayId: string): Promise<void> {
    const r = this.redis(brokerId, gatewayId);
    r.process.child.kill('SIGKILL');
    await r.process.exited;
  }

  /** Starts one gateway's Redis on a broker again, empty, from its rendered redis.conf. */
  async startRedis(brokerId: string, gatewayId: string): Promise<void> {
    const r = this.redis(brokerId, gatewayId);
    Object.assign(r, await startRedis(this.world, this.broker(brokerId).host, brokerId, r));
  }

  /**
   * A clean restart of one gateway's Redis on a broker, or of all of that broker's. Redis keeps
   * nothing: the jobs it held are lost, and the clients' retries (Idempotency-Key) recover them.
   */
  async restartRedis(brokerId: string, gatewayId?: string): Promise<void> {
    const b = this.broker(brokerId);
    const ids = gatewayId === undefined ? Object.keys(b.redis) : [gatewayId];
    await Promise.all(
      ids.map(async (id) => {
        const r = this.redis(brokerId, id);
        await r.process.stop(10_000);
        Object.assign(r, await startRedis(this.world, b.host, brokerId, r));
      }),
    );
  }

  /** Takes a host's link to a segment down (a partition) or up again. */
  async setLink(host: Host, segment: 'public' | 'private', up: boolean): Promise<void> {
    const dev = segment === 'public' ? 'pub0' : 'priv0';
    // A partition, not a reconfiguration: the kernel flushes a link's IPv6 addresses when it goes
    // down unless told to keep them, and a host would come back without its v6 address.
    if (!up) await host.check('sysctl', ['-qw', `net.ipv6.conf.${dev}.keep_addr_on_down=1`]);
    await host.check('ip', ['link', 'set', dev, up ? 'up' : 'down']);
    // The link's routes went with it: what nonstop-tunnel-routes.timer puts back on a broker.
    const broker = this.brokers.find((b) => b.host === host);
    if (up && segment === 'public' && broker !== undefined)
      await runTunnelRoutes(broker.host, broker.configFile);
  }

  /** A JSON-able description of the running world, for other tools to drive it. */
  topology(): Topology {
    const host = (h: Host, role: string, services: Service[]) => ({
      name: h.name,
      role,
      namespace: h.ns,
      addresses: h.addresses,
      services,
    });
    return {
      startedAt: new Date(this.startedAt).toISOString(),
      dir: this.dir,
      hosts: [
        host(this.inet, 'internet', []),
        ...this.gateways.map((g) =>
          host(g.host, 'gateway', [
            { name: 'http', bind: DUAL_STACK, port: 80, public: true, note: 'IPv4 and IPv6' },
            { name: 'https', bind: DUAL_STACK, port: 443, public: true, note: 'IPv4 and IPv6' },
            {
              name: 'ssh',
              bind: DUAL_STACK,
              port: g.sshPort,
              public: false,
              note: 'on 0.0.0.0 and ::; filtered until a knock',
            },
            ...this.brokers.map((b) => ({
              name: `tunnel-${b.id}`,
              bind: '127.0.0.1',
              port: g.remotePorts[b.id]!,
              public: false,
              note: `${b.id}'s Redis, reverse-forwarded over SSH`,
            })),
          ]),
        ),
        ...this.brokers.map((b) =>
          host(b.host, 'broker', [
            ...Object.values(b.redis).map((r) => ({
              name: `redis-${r.gatewayId}`,
              bind: '127.0.0.1',
              port: r.port,
              public: false,
              note: `${r.gatewayId}'s own Redis (${r.configFile})`,
            })),
            { name: 'status', bind: '127.0.0.1', port: b.statusPort, public: false },
          ]),
        ),
        host(this.core.host, 'core', [
          { name: 'core', bind: this.core.ip, port: this.core.port, public: false, note: 'mutual TLS' },
        ]),
      ],
      files: {
        adminKnockProfiles: this.adminKnockProfiles,
        publicCa: this.publicCaFile,
        gatewayHostKeys: Object.fromEntries(
          this.gateways.map((g) => [g.id, `${g.hostKey.privateKeyFile}.pub`]),
        ),
      },
    };
  }

  async close(): Promise<void> {
    await this.world.close();
  }
}

export interface Service {
  readonly name: string;
  readonly bind: string;
  readonly port: number;
  /** Reachable from the internet. */
  readonly public: boolean;
  readonly note?: string;
}

export interface Topology {
  readonly startedAt: string;
  readonly dir: string;
  readonly hosts: readonly {
    readonly name: string;
    readonly role: string;
    readonly namespace: string;
    readonly addresses: Host['addresses'];
    readonly services: readonly Service[];
  }[];
  readonly files: {
    readonly adminKnockProfiles: string;
    readonly publicCa: string;
    readonly gatewayHostKeys: Readonly<Record<string, string>>;
  };
}

async function build(world: World, options: ThreeTierOptions): Promise<ThreeTier> {
  const progress = options.progress ?? (() => {});
  const gatewayIds = ids('gw', options.gateways ?? 2);
  const brokerIds = ids('b', options.brokers ?? 2);
  const routes = join(world.dir, 'routes.json');
  writeWorldRoutes(routes);

  progress(`creating hosts: inet, ${gatewayIds.join(', ')}, ${brokerIds.join(', ')}, core`);
  const inet = await world.addHost('inet', { public: 1 });
  const gatewayHosts = new Map<string, Host>();
  for (const id of gatewayIds) gatewayHosts.set(id, await world.addHost(id, { public: 1 }));
  const brokerHosts = new Map<string, Host>();
  for (const id of brokerIds) brokerHosts.set(id, await world.addHost(id, { public: 1, private: 1 }));
  if (options.secondCore === true && options.corePostgres !== true)
    throw new Error("secondCore needs corePostgres: the embedded database is one process's");
  const coreHost = await world.addHost('core', { private: 1 });
  const coreIp = coreHost.addresses.private.v4[0]!;
  const core2Host = options.secondCore === true ? await world.addHost('core2', { private: 1 }) : undefined;
  const core2Ip = core2Host?.addresses.private.v4[0];
  const acmeOf = (await options.gatewayAcme?.({ inet, gateways: gatewayHosts })) ?? (() => undefined);

  progress("generating certificates, SSH keys, knock secrets, and each gateway's Redis on each broker");
  const dir = world.dir;
  const pki = await generatePki({
    dir: join(dir, 'pki'),
    brokers: brokerIds,
    gateways: gatewayIds,
    coreNames: ['core', coreIp],
    gatewayNames: [SITE_NAME, ...[...gatewayHosts.values()].flatMap((h) => [h.ip4, h.ip6])],
  });
  // Each host's files where its role puts them under its folder (the builders name them), and
  // the host's config built from that folder: the world's layout is the deployed one.
  const hostDir = (id: string, ...sub: string[]) => {
    const d = join(dir, id, ...sub);
    mkdirSync(d, { recursive: true, mode: 0o700 });
    return d;
  };
  const place = (from: string, to: string) => {
    mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
    copyFileSync(from, to);
  };
  const brokerKeys = new Map<string, SshKey>();
  for (const b of brokerIds) brokerKeys.set(b, await sshKeygen(hostDir(b, 'ssh'), 'id_ed25519'));
  // A knock secret per (client, gateway): one leaked secret opens one gateway to one client.
  const secrets = new Map<string, string>();
  for (const client of [...brokerIds, ADMIN_CLIENT]) {
    for (const g of gatewayIds) {
      const secret = newKnockSecret();
      secrets.set(`${client}/${g}`, secret);
      if (client === ADMIN_CLIENT) continue;
      hostDir(client, 'knock');
      writeFileSync(brokerFiles(join(dir, client)).knockSecret(g), `${secret}\n`, { mode: 0o600 });
    }
  }
  const remotePorts = Object.fromEntries(brokerIds.map((b, i) => [b, FIRST_TUNNEL_PORT + i]));
  mkdirSync(join(dir, 'knock'), { recursive: true, mode: 0o700 });
  // SPA keys per (client, gateway) too, when the brokers knock that way: the files are what
  // `nonstop spa-keygen --out` writes, the guard entries what it prints.
  const spaMode = options.brokerKnock === 'spa';
  const spaClients = new Map<string, SpaClient[]>(gatewayIds.map((g) => [g, []]));
  const adminSpaKeys: Record<string, string> = {};
  if (spaMode) {
    for (const client of [...brokerIds, ADMIN_CLIENT]) {
      for (const g of gatewayIds) {
        const key = generateSpaKeys(client);
        spaClients.get(g)!.push({
          name: client,
          key: key.encryptionKey.toString('base64'),
          hmacKey: key.hmacKey.toString('base64'),
        });
        const file =
          client === ADMIN_CLIENT
            ? join(dir, 'knock', `admin-${g}.spa`)
            : brokerFiles(join(dir, client)).spaKeys(g);
        if (client === ADMIN_CLIENT) adminSpaKeys[g] = file;
        else hostDir(client, 'knock');
        writeFileSync(file, formatSpaKeyFile(key), { mode: 0o600 });
      }
    }
  }
  const adminKnockProfiles = join(dir, 'knock', 'admin-profiles.json');
  writeJson(
    adminKnockProfiles,
    knockProfilesDocument({
      client: ADMIN_CLIENT,
      rotation: ROTATION,
      gateways: gatewayIds.map((g) => ({
        id: g,
        address: gatewayHosts.get(g)!.ip4,
        secret: secrets.get(`${ADMIN_CLIENT}/${g}`)!,
        profile: `${ADMIN_CLIENT}-${g}`,
      })),
    }),
  );

  const postgres =
    options.corePostgres === true
      ? await startWorldPostgres(world, coreHost, {
          diskMb: options.corePostgresDiskMb,
          standby: options.corePostgresStandby,
        })
      : null;
  /** A core host's files and config (as its role writes them), its core and its sample site. */
  const setUpCore = (id: string, host: Host, ip: string) => {
    progress(`starting ${id} on ${ip}:${CORE_PORT} (private segment only)`);
    const coreDir = hostDir(id);
    const configFile = join(coreDir, 'core.json');
    const doc = coreDocument(
      worldCoreInput({ configDir: coreDir, privateAddress: ip, port: CORE_PORT }, postgres?.corePostgres),
    );
    const tls = coreFiles(coreDir);
    place(routes, tls.routes);
    place(pki.ca.cert, tls.ca);
    place(pki.core.cert, tls.cert);
    place(pki.core.key, tls.key);
    writeJson(configFile, doc);
    const starting = startCore(host, configFile);
    // The sample site is the core's upstream for site.* (loopback on the core host).
    const site = host.spawn('python3', [
      join(packageRoot(), GUESTBOOK),
      '--port',
      String(GUESTBOOK_PORT),
      '--db',
      join(coreDir, 'guestbook.sqlite3'),
      '--secure-cookies',
    ]);
    const siteStarting = site.waitForLine((l) => l.includes('"listening"'), 30_000);
    return {
      host,
      ip,
      configFile,
      tls,
      dataDir: postgres?.primary.dataDir ?? doc.database.dataDir!,
      site,
      ready: Promise.all([starting, siteStarting]).then(([process]) => process),
    };
  };
  const coreSetUps = [setUpCore('core', coreHost, coreIp)];
  if (core2Host !== undefined) coreSetUps.push(setUpCore('core2', core2Host, core2Ip!));

  const hostKeys = new Map<string, SshKey>();
  for (const id of gatewayIds) {
    mkdirSync(join(dir, id), { recursive: true });
    hostKeys.set(id, await sshKeygen(join(dir, id), 'ssh_host_ed25519_key'));
  }
  // Each broker's config, and from it (as Ansible does, with `nonstop redis-acl`) each gateway's
  // Redis on that broker. A gateway has one Redis password, the same on every broker (put there
  // first, as the vault's is); the worker and admin passwords are each Redis's own.
  const gatewayPasswords = new Map<string, string>();
  for (const g of gatewayIds) {
    const file = gatewayFiles(join(dir, g)).redisPassword;
    writeFileSync(file, `${newPassword()}\n`, { mode: 0o600 });
    gatewayPasswords.set(g, file);
  }
  const brokerConfigs = new Map<string, { file: string; servers: WrittenRedisServer[] }>();
  for (const id of brokerIds) {
    const bdir = hostDir(id);
    const redisDir = hostDir(id, 'redis');
    const doc = brokerDocument(
      worldBrokerInput({
        id,
        configDir: bdir,
        rotation: ROTATION,
        gateways: gatewayIds.map((g) => ({
          id: g,
          address: tunnelFamilyOf(id, brokerIds) === 6 ? gatewayHosts.get(g)!.ip6 : gatewayHosts.get(g)!.ip4,
          hostKeyFingerprint: hostKeys.get(g)!.fingerprint,
          remotePort: remotePorts[id]!,
          ...(spaMode ? { knock: 'spa' as const } : {}),
          // Every gateway serves the site: any of them answers the site's ACME challenges.
          names: [SITE_NAME],
          // What the broker bounds this gateway's envelopes by: the same values its config has.
          ...(options.replyTimeoutMs === undefined ? {} : { replyTimeoutMs: options.replyTimeoutMs }),
          ...(options.gatewayLimits?.['maxBodyBytes'] === undefined
            ? {}
            : { maxBodyBytes: options.gatewayLimits['maxBodyBytes'] }),
        })),
        core: {
          url: `https://${coreIp}:${CORE_PORT}`,
          ...(core2Ip === undefined ? {} : { peers: [`https://${core2Ip}:${CORE_PORT}`] }),
          serverName: 'core',
        },
      }),
    );
    const files = brokerFiles(bdir);
    place(routes, files.routes);
    place(pki.ca.cert, files.ca);
    place(pki.brokers[id]!.cert, files.cert);
    place(pki.brokers[id]!.key, files.key);
    const file = join(bdir, 'broker.json');
    writeJson(file, doc);
    for (const g of gatewayIds) {
      mkdirSync(join(redisDir, g), { recursive: true, mode: 0o700 });
      copyFileSync(gatewayPasswords.get(g)!, join(redisDir, g, `${gatewayUser(g)}.password`));
    }
    brokerConfigs.set(id, {
      file,
      servers: renderBrokerRedis(validateConfig('broker', file, doc), redisDir),
    });
  }

  const gateways: GatewayNode[] = [];
  for (const id of gatewayIds) {
    const host = gatewayHosts.get(id)!;
    progress(
      `${id}: sshd and the knock guard on ${host.ip4} and ${host.ip6} port 22, the gateway on :80 and :443`,
    );
    const gdir = join(dir, id);
    const hostKey = hostKeys.get(id)!;
    const tunnelBrokers = brokerIds.map((b) => ({
      id: b,
      publicKey: brokerKeys.get(b)!.publicKey,
      port: remotePorts[b]!,
    }));
    const authorizedKeys = join(gdir, 'tunnel_authorized_keys');
    writeFileSync(authorizedKeys, renderTunnelAuthorizedKeys(tunnelBrokers), { mode: 0o600 });
    const sshdConfig = join(gdir, 'sshd_config');
    writeFileSync(
      sshdConfig,
      renderSshdConfig(
        worldGatewaySshd({
          dir: gdir,
          hostKeyFile: hostKey.privateKeyFile,
          authorizedKeysFile: authorizedKeys,
          brokers: tunnelBrokers,
          // Both families, as deployed (sshd binds `::` IPv6-only, so IPv4 needs its own line).
          listenAddresses: ['0.0.0.0', '::'],
        }),
      ),
    );
    const sshd = await startSshd(host, sshdConfig);
    const guardConfig = join(gdir, 'guard.json');
    const guardInput: GuardInput = {
      role: 'gateway',
      id,
      rotation: ROTATION,
      clients: [...(spaMode ? [] : brokerIds), ADMIN_CLIENT].map((c) => ({
        name: c,
        secret: secrets.get(`${c}/${id}`)!,
      })),
      spaClients: spaClients.get(id)!,
    };
    writeJson(guardConfig, guardDocument(worldGuardInput(guardInput, gdir)));
    const guard = await startGuard(host, guardConfig);
    const redisUser = gatewayUser(id);
    const configFile = join(gdir, 'gateway.json');
    const files = gatewayFiles(gdir);
    place(routes, files.routes);
    place(pki.gateways[id]!.cert, files.cert);
    place(pki.gateways[id]!.key, files.key);
    // One secret for the deployment (the first gateway makes it, the others get a copy): every
    // gateway derives the same request id from a client's Idempotency-Key.
    place(idempotencySecret(join(dir, 'idempotency.secret')), files.idempotencySecret);
    const acme = acmeOf(id);
    writeJson(
      configFile,
      gatewayDocument(
        worldGatewayInput(
          { id, configDir: gdir, tunnels: brokerIds.map((b) => ({ broker: b, port: remotePorts[b]! })) },
          {
            ...(options.gatewayLimits === undefined ? {} : { limits: options.gatewayLimits }),
            ...(options.replyTimeoutMs === undefined ? {} : { replyTimeoutMs: options.replyTimeoutMs }),
            ...(acme === undefined ? {} : { acme }),
            ...(options.gatewayProxyProtocolFromInet === true
              ? {
                  httpsProxyProtocol: true,
                  clientAddress: { trustedProxies: [`${inet.ip4}/32`, `${inet.ip6}/128`] },
                }
              : {}),
          },
        ),
      ),
    );
    const gateway = await startGateway(host, configFile);
    gateways.push({
      id,
      host,
      ip: host.ip4,
      httpUrl: `http://${host.ip4}`,
      httpsUrl: `https://${host.ip4}`,
      ip6: host.ip6,
      httpUrl6: `http://[${host.ip6}]`,
      httpsUrl6: `https://[${host.ip6}]`,
      dir: gdir,
      sshPort: 22,
      hostKey,
      redisUser,
      redisPasswordFile: gatewayPasswords.get(id)!,
      remotePorts,
      configFile,
      sshdConfig,
      guardConfig,
      guardInput,
      tunnelAuthorizedKeys: authorizedKeys,
      tunnelBrokers,
      sshd,
      guard,
      gateway,
    });
  }
  const coreProcesses = await Promise.all(coreSetUps.map((c) => c.ready));

  const brokers: BrokerNode[] = [];
  // Each gateway's Redis gets its unit's CPU and memory budget in a cgroup; said once if it cannot.
  const cgroups = world.cgroupSupport();
  if (cgroups.version === 0)
    progress(`each gateway's Redis runs without its CPU and memory budget: ${cgroups.reason}`);
  else if (cgroups.version === 1 ? cgroups.memory === undefined : !cgroups.memory)
    progress(`each gateway's Redis gets its CPU budget (cgroup v${cgroups.version}) but no memory ceiling`);
  for (const id of brokerIds) {
    const host = brokerHosts.get(id)!;
    progress(
      `${id}: a Redis per gateway on its loopback, then the broker (knocks, tunnels out, listens on nothing)`,
    );
    const { file: configFile, servers } = brokerConfigs.get(id)!;
    const redis: Record<string, RedisNode> = {};
    for (const r of servers) {
      const started = await startRedis(world, host, id, r);
      redis[r.gatewayId] = {
        gatewayId: r.gatewayId,
        port: r.port,
        configFile: r.configFile,
        aclFile: r.aclFile,
        adminUser: ADMIN_USER,
        adminPasswordFile: r.passwordFiles[ADMIN_USER]!,
        workerUser: DEFAULT_WORKER_USER,
        workerPasswordFile: r.passwordFiles[DEFAULT_WORKER_USER]!,
        budget: r.budget,
        ...started,
      };
    }
    // What nonstop-tunnel-routes.service does before the broker starts (Ansible).
    await runTunnelRoutes(host, configFile);
    const broker = host.node(CLI, ['broker', '--config', configFile]);
    brokers.push({
      id,
      host,
      dir: join(dir, id),
      statusPort: WORLD_STATUS_PORT,
      configFile,
      redis,
      sshKey: brokerKeys.get(id)!,
      tunnelFamily: tunnelFamilyOf(id, brokerIds),
      process: broker,
    });
  }

  const cores: CoreNode[] = coreSetUps.map((c, i) => ({
    host: c.host,
    ip: c.ip,
    port: CORE_PORT,
    url: `https://${c.ip}:${CORE_PORT}`,
    configFile: c.configFile,
    dataDir: c.dataDir,
    postgres,
    caFile: c.tls.ca,
    certFile: c.tls.cert,
    keyFile: c.tls.key,
    process: coreProcesses[i]!,
    site: c.site,
  }));
  return new ThreeTier(world, inet, gateways, brokers, cores, {
    adminKnockProfiles,
    publicCaFile: pki.publicCa.cert,
    adminSpaKeys,
  });
}

/**
 * The last broker of two or more knocks and tunnels over IPv6, the others over IPv4: every world
 * carries requests over both families (production gateways are reached over either).
 */
function tunnelFamilyOf(id: string, brokerIds: readonly string[]): 4 | 6 {
  return brokerIds.length > 1 && id === brokerIds.at(-1) ? 6 : 4;
}

/** Where a request goes: HTTP or HTTPS, to the gateway's IPv4 or IPv6 address. */
function baseUrl(g: GatewayNode, r: ClientRequest): string {
  if (r.family === 6) return r.https === true ? g.httpsUrl6 : g.httpUrl6;
  return r.https === true ? g.httpsUrl : g.httpUrl;
}

function ids(prefix: string, count: number): string[] {
  if (!Number.isInteger(count) || count < 1 || count > 8) throw new Error(`${prefix} count must be 1–8`);
  return Array.from({ length: count }, (_, i) => `${prefix}${i + 1}`);
}

function writeJson(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function sshKeygen(dir: string, name: string): Promise<SshKey> {
  const file = join(dir, name);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  const { stdout } = await run('ssh-keygen', ['-l', '-f', `${file}.pub`]);
  const publicKey = readFileSync(`${file}.pub`, 'utf8').trim();
  return { privateKeyFile: file, publicKey, fingerprint: stdout.split(' ')[1] ?? '' };
}

async function listeningPorts(host: Host): Promise<Set<number>> {
  const out = await host.check('ss', ['-ltnH']);
  const ports = new Set<number>();
  for (const line of out.split('\n')) {
    const local = line.trim().split(/\s+/)[3];
    const port = Number(local?.slice(local.lastIndexOf(':') + 1));
    if (Number.isInteger(port)) ports.add(port);
  }
  return ports;
}

async function waitForPort(host: Host, port: number, proc: HostProcess, what: string): Promise<void> {
  const end = Date.now() + 20_000;
  while (Date.now() < end) {
    if (!proc.running) break;
    if ((await listeningPorts(host)).has(port)) return;
    await sleep(50);
  }
  throw new Error(
    `${host.name}: ${what} did not listen on ${port}:\n${[...proc.lines, ...proc.stderrLines].slice(-20).join('\n')}`,
  );
}

async function startSshd(host: Host, config: string): Promise<HostProcess> {
  ensurePrivsepDir();
  const sshd = host.spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config]);
  await waitForPort(host, 22, sshd, 'sshd');
  return sshd;
}

async function startGuard(host: Host, config: string): Promise<HostProcess> {
  const guard = host.node(CLI, ['guard', '--config', config]);
  await guard.waitForLine((l) => l.includes('"event":"started"'), 15_000);
  return guard;
}

async function startGateway(host: Host, config: string): Promise<HostProcess> {
  const gateway = host.node(CLI, ['gateway', '--config', config]);
  await gateway.waitForLine((l) => l.includes('gateway listening'), 20_000);
  return gateway;
}

/**
 * `nonstop tunnel-routes` in a broker's host: its routes to the gateways get quickack. A link
 * just brought up may not route yet; like the timer, it is tried again: 16 runs in all, 200 ms
 * apart (each run is a node start of its own, so this is a few seconds, not a fixed bound).
 */
async function runTunnelRoutes(host: Host, brokerConfig: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const r = await host.runNode(CLI, ['tunnel-routes', '--config', brokerConfig]);
    if (r.code === 0) return;
    if (attempt >= 15) throw new Error(`${host.name}: nonstop tunnel-routes failed: ${r.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function startCore(host: Host, config: string): Promise<HostProcess> {
  const core = host.node(CLI, ['core', '--config', config]);
  await core.waitForLine((l) => l.includes('core listening'), 60_000);
  return core;
}

/**
 * `redis-server <its rendered redis.conf>`: nothing on its command line but the file. It goes
 * into a cgroup of its own with its unit's budget right after spawn (its threads start later
 * and follow it), weighed against the world's other processes (world/cgroup.ts peerNice); the
 * cgroup is removed once it exits, however it ends.
 */
async function startRedis(
  world: World,
  host: Host,
  brokerId: string,
  redis: Pick<RedisNode, 'gatewayId' | 'port' | 'configFile' | 'budget'>,
): Promise<{ process: HostProcess; cgroup: BudgetCgroup | null }> {
  const cgroup = world.budgetCgroup(`${brokerId}-${redis.gatewayId}`, redis.budget, peerNice());
  const process = host.spawn('redis-server', [redis.configFile]);
  if (cgroup !== null) void process.exited.then(() => world.removeCgroup(cgroup).catch(() => {}));
  try {
    cgroup?.add(process.child.pid ?? NaN);
  } catch (err) {
    await process.stop(0);
    throw new Error(`${host.name}: redis-server of ${redis.gatewayId} could not join its cgroup`, {
      cause: err,
    });
  }
  await waitForPort(host, redis.port, process, `redis-server of ${redis.gatewayId}`);
  return { process, cgroup };
}

function idempotencySecret(file: string): string {
  writeIdempotencySecret(file, { keep: true });
  return file;
}

/** SIGKILL of a process and of everything it forked, listed first (they are reparented after). */
function sigkillTree(pid: number): void {
  for (const p of [pid, ...descendants(pid)].reverse()) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** The notes API's routes and the sample site's, as one route table for every tier. */
function writeWorldRoutes(file: string): void {
  const read = (f: string) =>
    JSON.parse(readFileSync(join(packageRoot(), f), 'utf8')) as { routes: unknown[] };
  const notes = read(ROUTES);
  writeJson(file, {
    ...notes,
    $schema: undefined,
    routes: [...notes.routes, ...read(GUESTBOOK_ROUTES).routes],
  });
}
