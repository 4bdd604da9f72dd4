// site.yml converges a gateway, a broker and a core onto real Debian 12 root filesystems (chroot
// connection), a second run changes nothing, and what it leaves passes the tools that will
// read it: nft -c, sshd -t / -T, redis-server with the ACL file, PostgreSQL, systemd-analyze.
// Ansible, PostgreSQL and Redis run in their own network namespace (unshare --net): nothing here
// touches this machine's network or ruleset. Last, the trees boot with their own systemd in the
// test world's namespaces (nspawn.ts), serve a request and take a third converge live.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import {
  ADMIN_USER,
  aclUsers,
  DEFAULT_WORKER_USER,
  gatewayUser,
  renderAclFile,
} from '../../broker/redis-acl.js';
import { packageRoot, World, type Host } from '../../world/world.js';
import { baseImage, RootfsSet, rootfsSkipReason, run, type CommandResult } from './rootfs.js';
import { AGENT } from './gateway.js';
import { changedTasks, recap } from './ansible-run.js';
import { BootedHost, mainProcess } from './nspawn.js';
import { brokerDocument } from '../../config/render/broker.js';
import { coreDocument } from '../../config/render/core.js';
import { gatewayDocument } from '../../config/render/gateway.js';
import { guardDocument } from '../../config/render/guard.js';
import { knockProfilesDocument } from '../../config/render/knock.js';
import { formatSpaKeyFile, generateSpaKeys } from '../../knock/spa.js';
import type { ConfigKind } from '../../config/load.js';
import { renderSshdConfig } from '../../gateway/sshd-config.js';
import { worldGatewaySshd } from '../../world/gateway-sshd.js';
import {
  WORLD_CONFIG_DIFFERENCES,
  worldBrokerInput,
  worldCoreInput,
  worldGatewayInput,
  worldGuardInput,
} from '../../world/host-configs.js';
import { sshKeygen } from '../../world/three-tier.js';
import { configDifferences, undeclaredDifferences } from '../helpers/config-diff.js';
import { parseSshdT, sshdDifferences, sshdEffective } from '../helpers/sshd-profile.js';

const ROOT = packageRoot();
const ANSIBLE_DIR = join(ROOT, 'ansible');
const PG = '15';
const PG_DATA = `/var/lib/postgresql/${PG}/main`;
// Unix socket only: no TCP listener anywhere while the core role talks to it.
const PG_OPTIONS = `-c config_file=/etc/postgresql/${PG}/main/postgresql.conf -c listen_addresses= -c port=5432`;
const HOSTS = { gateway: 'gw1.example.net', broker: 'broker1.example.net', core: 'core.example.internal' };
const UNITS = [
  { host: 'gateway', unit: 'nonstop-gateway.service' },
  { host: 'gateway', unit: 'nonstop-guard.service' },
  { host: 'broker', unit: 'nonstop-guard.service' },
  { host: 'broker', unit: 'nonstop-broker.service' },
  { host: 'broker', unit: 'nonstop-tunnel-routes.service' },
  { host: 'core', unit: 'nonstop-core.service' },
] as const;
type HostRole = keyof typeof HOSTS;
const OLD_RELEASES = ['a', 'b', 'c', 'd'].map((c) => c.repeat(40));
const BROKER_PRIVATE = '10.0.0.20';

const skip = rootfsSkipReason([
  'ansible-playbook',
  'mmdebstrap',
  'unshare',
  'systemd-analyze',
  'systemd-nspawn',
  'nsenter',
]);

const log = (msg: string) => process.stderr.write(`# ansible-converge: ${msg}\n`);

describe('ansible provisioning on Debian 12 root filesystems', { skip }, () => {
  let set: RootfsSet;
  const roots = {} as Record<HostRole, string>;
  let secrets: {
    vault_redis_passwords: { gateways: Record<string, string> };
    vault_knock_secrets: Record<string, Record<string, string>>;
  };
  const converges: CommandResult[] = [];
  let bundle = '';
  let secretsFile = '';
  let vaultPassword = '';

  // --ipc too: PostgreSQL's System V shared memory must not meet this machine's PostgreSQL.
  const chroot = (host: HostRole, args: readonly string[]) =>
    run('unshare', ['--net', '--ipc', 'chroot', roots[host], ...args]);
  const pgCtl = (...args: string[]) =>
    chroot('core', [
      'runuser',
      '-u',
      'postgres',
      '--',
      `/usr/lib/postgresql/${PG}/bin/pg_ctl`,
      '-D',
      PG_DATA,
      ...args,
    ]);

  /** An inventory of the example's variables with the three hosts reached through `connection`. */
  const writeInventory = (dir: string, connection: string, hostVar: (host: HostRole) => string) => {
    for (const sub of ['group_vars', 'host_vars'])
      cpSync(join(ANSIBLE_DIR, 'inventory/example', sub), join(dir, sub), { recursive: true });
    const hostEntry = (host: HostRole) => `        ${HOSTS[host]}:\n          ${hostVar(host)}\n`;
    writeFileSync(
      join(dir, 'hosts.yml'),
      // su: root needs no password to become postgres, and the image has no sudo.
      `nonstop:\n  vars:\n    ansible_connection: ${connection}\n    ansible_become_method: ansible.builtin.su\n  children:\n` +
        `    gateways:\n      hosts:\n${hostEntry('gateway')}` +
        `    brokers:\n      hosts:\n${hostEntry('broker')}` +
        `    core:\n      hosts:\n${hostEntry('core')}`,
    );
  };

  /** `ansible-playbook site.yml` with the vault's secrets, the release bundle and `vars`. */
  const playbook = (inventory: string, vars: Record<string, unknown>) => {
    const varsFile = `${inventory}.vars.json`;
    writeFileSync(
      varsFile,
      JSON.stringify({
        common_release_bundle: bundle,
        // The image's package lists are as old as the cache; no `apt-get update` offline.
        common_apt_cache_valid_time: 10 * 365 * 86400,
        ...vars,
      }),
    );
    const env = { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0', ANSIBLE_PIPELINING: '1' };
    return run(
      'unshare',
      [
        '--net',
        'ansible-playbook',
        '-i',
        inventory,
        '-e',
        `@${secretsFile}`,
        '--vault-password-file',
        vaultPassword,
        '-e',
        `@${varsFile}`,
        'site.yml',
      ],
      { cwd: ANSIBLE_DIR, env, timeoutMs: 900_000 }, // a converge took 400 s with three others running
    );
  };

  /**
   * The test world with a namespace per provisioned host: `inet`, the gateway at the inventory's
   * public address (198.51.100.10), the broker on both segments, the core at its private address
   * (10.0.0.30). Addresses and ports come from the rendered broker.json.
   */
  const provisionedWorld = async () => {
    const broker = JSON.parse(readFileSync(join(roots.broker, 'etc/nonstop/broker.json'), 'utf8')) as {
      gateways: { id: string; ssh: { host: string; port: number; remotePort: number } }[];
      core: { url: string };
    };
    const gwAddress = broker.gateways[0]?.ssh.host ?? '';
    const remotePort = broker.gateways[0]?.ssh.remotePort ?? 0;
    const coreAddress = new URL(broker.core.url).hostname;
    const world = await World.create();
    try {
      const inet = await world.addHost('inet', { public: 1 });
      const gw = await world.addHost('gw1', { public: 1 });
      const br = await world.addHost('broker1', { public: 1, private: 1 });
      const core = await world.addHost('core', { private: 1 });
      await gw.check('ip', ['addr', 'add', `${gwAddress}/32`, 'dev', 'pub0']);
      for (const h of [inet, br]) await h.check('ip', ['route', 'add', `${gwAddress}/32`, 'dev', 'pub0']);
      await core.check('ip', ['addr', 'add', `${coreAddress}/32`, 'dev', 'priv0']);
      // The broker's inventory address (nonstop_broker_private_addresses): the core lets in no other.
      await br.check('ip', ['addr', 'add', `${BROKER_PRIVATE}/32`, 'dev', 'priv0']);
      await br.check('ip', ['route', 'add', `${coreAddress}/32`, 'dev', 'priv0', 'src', BROKER_PRIVATE]);
      await core.check('ip', ['route', 'add', `${BROKER_PRIVATE}/32`, 'dev', 'priv0']);
      return { world, inet, gw, br, core, gwAddress, coreAddress, remotePort };
    } catch (err) {
      await world.close();
      throw err;
    }
  };

  /** HTTPS from `from` to the gateway: the status code and the body. */
  const request = async (from: Host, url: string, body?: string) => {
    const post = body === undefined ? [] : ['-X', 'POST', '-H', 'content-type: application/json', '-d', body];
    const r = await from.exec(
      'curl',
      ['-sk', '-o', '-', '-w', '\n%{http_code}', '--max-time', '10', ...post, url],
      { timeoutMs: 15_000 },
    );
    const lines = r.stdout.trimEnd().split('\n');
    return { code: lines.at(-1) ?? '', body: lines.slice(0, -1).join('\n') };
  };

  before(
    async () => {
      set = new RootfsSet();
      let t = Date.now();
      const lap = (what: string) => {
        log(`${what}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
        t = Date.now();
      };

      const release = await run('sh', [join(ROOT, 'scripts/release.sh'), join(set.dir, 'release')]);
      assert.equal(release.code, 0, release.stderr);
      bundle = release.stdout.trim().split('\n').at(-1) ?? '';
      lap('release bundle (scripts/release.sh)');

      const made = await run(join(ANSIBLE_DIR, 'bin/make-secrets.sh'), [
        '--out',
        join(set.dir, 'secrets'),
        '--gateways',
        'gw1',
        '--brokers',
        'broker1',
      ]);
      assert.equal(made.code, 0, made.stderr);
      secretsFile = made.stdout.trim();
      secrets = JSON.parse(readFileSync(secretsFile, 'utf8')) as typeof secrets;
      // Encrypted as the README has the operator do it; the playbook reads it with the vault password.
      vaultPassword = join(set.dir, 'vault-password');
      writeFileSync(vaultPassword, 'nonstop-test\n', { mode: 0o600 });
      const encrypted = await run('ansible-vault', [
        'encrypt',
        '--vault-password-file',
        vaultPassword,
        secretsFile,
      ]);
      assert.equal(encrypted.code, 0, encrypted.stderr);
      assert.match(readFileSync(secretsFile, 'utf8'), /^\$ANSIBLE_VAULT;/);
      lap('secrets (ansible/bin/make-secrets.sh)');

      const image = await baseImage();
      lap(image.built ? `base image built (mmdebstrap) ${image.path}` : `base image cached ${image.path}`);
      await Promise.all(
        (Object.keys(HOSTS) as HostRole[]).map(
          async (host) => (roots[host] = await set.unpack(host, image.path)),
        ),
      );
      lap('three root filesystems unpacked');
      // Releases of earlier deployments on the gateway, oldest first (by unpack time): the role
      // keeps the active one and the newest two (common_keep_releases: 3).
      for (const name of OLD_RELEASES) {
        mkdirSync(join(roots.gateway, 'opt/nonstop/releases', name), { recursive: true });
        await sleep(20);
      }

      // The core role creates its database role and database through a running PostgreSQL:
      // start the image's cluster on its Unix socket only (no TCP), as systemd would on a host.
      chmodSync(join(roots.core, 'dev/shm'), 0o1777);
      set.mountProc(roots.core);
      // /run is a tmpfs on a booted host, where PostgreSQL's own units create its socket folder.
      await chroot('core', [
        'install',
        '-d',
        '-o',
        'postgres',
        '-g',
        'postgres',
        '-m',
        '2775',
        '/run/postgresql',
      ]);
      const pg = await pgCtl('start', '-w', '-l', '/var/log/postgresql/nonstop-test.log', '-o', PG_OPTIONS);
      assert.equal(pg.code, 0, pg.stdout + pg.stderr);
      set.track(Number(readFileSync(join(roots.core, `${PG_DATA}/postmaster.pid`), 'utf8').split('\n')[0]));

      // The example inventory's variables, with the hosts reached by chroot.
      const inventory = join(set.dir, 'inventory');
      writeInventory(inventory, 'community.general.chroot', (host) => `ansible_host: ${roots[host]}`);
      for (const pass of ['first', 'second']) {
        converges.push(
          await playbook(inventory, {
            // A chroot has no systemd to start anything; units are enabled, not started.
            nonstop_start_services: false,
          }),
        );
        lap(`${pass} converge (ansible-playbook site.yml, 3 hosts)`);
      }
    },
    // The bundle and two converges of three hosts: over 15 minutes on a busy 2-core machine.
    { timeout: 1_800_000 },
  );

  after(async () => {
    if (roots.core !== undefined && existsSync(join(roots.core, PG_DATA, 'postmaster.pid')))
      await pgCtl('stop', '-m', 'fast', '-w');
    set?.disposeSync();
  });

  test('the first converge succeeds on all three hosts', () => {
    const r = converges[0];
    assert.ok(r);
    const hosts = recap(r.stdout);
    for (const name of Object.values(HOSTS)) {
      const h = hosts.get(name);
      assert.ok(h, `${name} missing from the recap:\n${r.stdout.slice(-3000)}`);
      assert.equal(h.failed + h.unreachable, 0, r.stdout.slice(-6000));
      assert.ok(h.changed > 0, `${name}: the first run changed nothing`);
    }
    assert.equal(r.code, 0, r.stderr);
  });

  test('the second converge reports changed=0 everywhere', () => {
    const r = converges[1];
    assert.ok(r);
    assert.equal(r.code, 0, r.stdout.slice(-6000));
    const hosts = recap(r.stdout);
    for (const name of Object.values(HOSTS)) {
      const h = hosts.get(name);
      assert.ok(h, `${name} missing from the recap`);
      assert.equal(h.changed, 0, `${name} changed again:\n${changedTasks(r.stdout, name).join('\n')}`);
      assert.equal(h.failed, 0);
    }
  });

  test('common: the active release and the newest two others are kept, older ones removed', () => {
    const releases = join(roots.gateway, 'opt/nonstop/releases');
    const active = readlinkSync(join(roots.gateway, 'opt/nonstop/current')).split('/').at(-1) ?? '';
    assert.match(active, /^[0-9a-f]{40}$/);
    const dirs = readdirSync(releases).filter((n) => n !== 'nonstop.tar.gz');
    assert.deepEqual(dirs.sort(), [active, ...OLD_RELEASES.slice(2)].sort());
  });

  test('gateway: nft -c accepts the boot ruleset, which is the guard table with input policy drop', async () => {
    const r = await chroot('gateway', ['nft', '-c', '-f', '/etc/nftables.conf']);
    assert.equal(r.code, 0, r.stderr);
    const ruleset = readFileSync(join(roots.gateway, 'etc/nftables.conf'), 'utf8');
    assert.match(ruleset, /^table inet nonstop \{$/m);
    assert.match(ruleset, /type filter hook input priority filter; policy drop;/);
    assert.match(ruleset, /tcp dport \{ 80, 443 \} accept/);
    assert.match(ruleset, /tcp dport 22 ip saddr @ssh_open4 accept/);
    assert.doesNotMatch(ruleset, /flush ruleset/, 'the guard table must not flush other tables');
  });

  test('gateway: sshd -t passes and sshd -T confines the tunnel user', async () => {
    assert.equal((await chroot('gateway', ['/usr/sbin/sshd', '-t'])).code, 0);
    const effective = async (user: string) => {
      const r = await chroot('gateway', [
        '/usr/sbin/sshd',
        '-T',
        '-C',
        `user=${user},host=b,addr=198.18.0.20`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      return parseSshdT(r.stdout);
    };
    const tunnel = await effective('nonstop-tunnel');
    assert.equal(tunnel.get('allowtcpforwarding'), 'remote');
    assert.equal(tunnel.get('permitopen'), 'none');
    assert.equal(tunnel.get('permittty'), 'no');
    assert.equal(tunnel.get('forcecommand'), '/usr/sbin/nologin');
    assert.equal(tunnel.get('allowstreamlocalforwarding'), 'no');
    assert.equal(tunnel.get('x11forwarding'), 'no');
    assert.equal(tunnel.get('permitlisten'), '127.0.0.1:6380');
    assert.equal(tunnel.get('authorizedkeysfile'), '/etc/ssh/authorized_keys/%u');
    assert.equal(tunnel.get('maxsessions'), '0');
    const admin = await effective('admin');
    // One source: the world's gateway sshd agrees with the deployed one on every other key.
    const dir = join(set.dir, 'world-sshd');
    mkdirSync(dir, { recursive: true });
    const hostKey = await sshKeygen(dir, 'host');
    const worldConfig = join(dir, 'sshd_config');
    writeFileSync(
      worldConfig,
      renderSshdConfig(
        worldGatewaySshd({
          dir,
          hostKeyFile: hostKey.privateKeyFile,
          authorizedKeysFile: join(dir, 'k'),
          brokers: [],
        }),
      ),
    );
    assert.deepEqual(sshdDifferences(tunnel, await sshdEffective(worldConfig, 'root')), []);
    assert.deepEqual(sshdDifferences(admin, await sshdEffective(worldConfig, 'admin')), []);
    assert.equal(tunnel.get('allowgroups'), 'nonstop-ssh nonstop-tunnel');
    const groups = readFileSync(join(roots.gateway, 'etc/group'), 'utf8');
    assert.doesNotMatch(groups, /^nonstop-ssh:.*\bnonstop-tunnel\b/m, 'the tunnel user is no admin');
    assert.equal(admin.get('allowtcpforwarding'), 'no');
    assert.equal(admin.get('forcecommand'), 'none');
    for (const cfg of [tunnel, admin]) {
      assert.equal(cfg.get('passwordauthentication'), 'no');
      assert.equal(cfg.get('kbdinteractiveauthentication'), 'no');
      assert.equal(cfg.get('permitrootlogin'), 'no');
      assert.equal(cfg.get('hostkeyalgorithms'), 'ssh-ed25519');
      assert.doesNotMatch(cfg.get('kexalgorithms') ?? '', /sha1|nistp|group14|group-exchange/);
      assert.doesNotMatch(cfg.get('ciphers') ?? '', /cbc|ctr/);
      assert.doesNotMatch(cfg.get('macs') ?? '', /sha1|md5|umac-64|(^|,)hmac-sha2-(256|512)(,|$)/);
    }
    const keys = readFileSync(join(roots.gateway, 'etc/ssh/authorized_keys/nonstop-tunnel'), 'utf8');
    const lines = keys.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.equal(lines.length, 1);
    assert.match(
      lines[0] ?? '',
      /^restrict,port-forwarding,permitlisten="127\.0\.0\.1:6380" ssh-ed25519 \S+/,
    );
    // The pinned host key is the one from the secrets, so brokers can pin it.
    const pinned = readFileSync(join(set.dir, 'secrets/ssh/gateway-gw1.pub'), 'utf8').split(' ')[1];
    assert.equal(
      readFileSync(join(roots.gateway, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8').split(' ')[1],
      pinned,
    );
    assert.ok(!existsSync(join(roots.gateway, 'etc/ssh/ssh_host_rsa_key')), 'no RSA host key');
  });

  test('broker and core: nft -c and input policy drop, no public port; sshd: core private, broker jumps', async () => {
    for (const host of ['broker', 'core'] as const) {
      const r = await chroot(host, ['nft', '-c', '-f', '/etc/nftables.conf']);
      assert.equal(r.code, 0, `${host}: ${r.stderr}`);
      assert.equal((await chroot(host, ['/usr/sbin/sshd', '-t'])).code, 0, host);
    }
    const broker = readFileSync(join(roots.broker, 'etc/nftables.conf'), 'utf8');
    assert.match(broker, /^table inet nonstop \{$/m);
    assert.match(broker, /type filter hook input priority filter; policy drop;/);
    assert.doesNotMatch(broker, /\b(80|443)\b/, 'a broker serves no port');
    assert.match(broker, /tcp dport 22 ip saddr @ssh_open4 accept/);
    const core = readFileSync(join(roots.core, 'etc/nftables.conf'), 'utf8');
    assert.match(core, /^table inet nonstop_host \{$/m);
    for (const hook of ['input', 'forward', 'output'])
      assert.match(core, new RegExp(`hook ${hook} priority filter; policy drop;`), hook);
    for (const port of [9443, 22])
      assert.match(
        core,
        new RegExp(
          `tcp dport ${port} ip saddr \\{ 10\\.0\\.0\\.20 \\} ip daddr \\{ 10\\.0\\.0\\.30 \\} accept`,
        ),
      );
    const effective = async (host: HostRole, user: string) => {
      const r = await chroot(host, ['/usr/sbin/sshd', '-T', '-C', `user=${user},host=b,addr=10.0.0.20`]);
      assert.equal(r.code, 0, r.stderr);
      return parseSshdT(r.stdout);
    };
    assert.equal((await effective('core', 'admin')).get('listenaddress'), '10.0.0.30:22');
    const jump = await effective('broker', 'admin');
    assert.equal(jump.get('allowtcpforwarding'), 'local');
    assert.equal(jump.get('permitopen'), '10.0.0.30:22');
    assert.equal(jump.get('allowgroups'), 'nonstop-ssh');
  });

  test('every rendered config passes nonstop check-config on its host', async () => {
    const node = '/opt/nonstop/current/node/bin/node';
    const cli = '/opt/nonstop/current/dist/cli/index.js';
    const files: Record<HostRole, string[]> = {
      gateway: ['gateway.json', 'guard.json', 'routes.json'],
      broker: ['broker.json', 'knock.json', 'routes.json'],
      core: ['core.json', 'routes.json'],
    };
    for (const [host, names] of Object.entries(files) as [HostRole, string[]][]) {
      const r = await chroot(host, [node, cli, 'check-config', ...names.map((n) => `/etc/nonstop/${n}`)]);
      assert.equal(r.code, 0, `${host}: ${r.stdout}${r.stderr}`);
    }
    const version = await chroot('gateway', [node, '-p', 'process.versions.node']);
    assert.ok(Number(version.stdout.split('.')[0]) >= 20, version.stdout);
  });

  // One source: the world's daemon configs, built by the world's code path (world/host-configs.ts)
  // from this deployment's facts, are the deployed ones but for WORLD_CONFIG_DIFFERENCES.
  test("the world's gateway, guard, broker and core configs are the deployed ones but for the declared differences", async () => {
    const deployedText = (host: HostRole, name: string) =>
      readFileSync(join(roots[host], 'etc/nonstop', name), 'utf8');
    const fingerprint = await run('ssh-keygen', ['-l', '-f', join(set.dir, 'secrets/ssh/gateway-gw1.pub')]);
    const brokerSecret = secrets.vault_knock_secrets.gw1?.broker1 ?? '';
    // The example inventory's facts (group_vars/all.yml, host_vars) and the vault's secrets.
    const configDir = '/etc/nonstop';
    const rotation = { portMin: 20000, portMax: 29999, length: 4, stepSeconds: 30 };
    const gw1 = { id: 'gw1', address: '198.51.100.10' };
    const compared: {
      kind: ConfigKind & keyof typeof WORLD_CONFIG_DIFFERENCES;
      host: HostRole;
      file: string;
      world: unknown;
    }[] = [
      {
        kind: 'gateway',
        host: 'gateway',
        file: 'gateway.json',
        world: gatewayDocument(
          worldGatewayInput({ id: gw1.id, configDir, tunnels: [{ broker: 'broker1', port: 6380 }] }),
        ),
      },
      {
        kind: 'guard',
        host: 'gateway',
        file: 'guard.json',
        world: guardDocument(
          worldGuardInput(
            {
              role: 'gateway',
              id: gw1.id,
              rotation,
              clients: [{ name: 'broker1', secret: brokerSecret }],
              static: [{ name: 'ops', sequence: ['7000', '8000:udp', '9000'] }],
            },
            configDir,
          ),
        ),
      },
      {
        kind: 'broker',
        host: 'broker',
        file: 'broker.json',
        world: brokerDocument(
          worldBrokerInput({
            id: 'broker1',
            configDir,
            rotation,
            gateways: [
              {
                ...gw1,
                hostKeyFingerprint: fingerprint.stdout.split(' ')[1] ?? '',
                remotePort: 6380,
                // The inventory's (group_vars/all.yml): the name whose ACME answers it relays.
                names: ['www.example.net'],
              },
            ],
            core: { url: 'https://10.0.0.30:9443', serverName: 'core' },
          }),
        ),
      },
      {
        kind: 'guard',
        host: 'broker',
        file: 'guard.json',
        world: guardDocument(
          worldGuardInput(
            {
              role: 'broker',
              id: 'broker1',
              rotation,
              static: [{ name: 'ops', sequence: ['7101', '8101:udp', '9101'] }],
            },
            configDir,
          ),
        ),
      },
      {
        kind: 'core',
        host: 'core',
        file: 'core.json',
        world: coreDocument(worldCoreInput({ configDir, privateAddress: '10.0.0.30', port: 9443 })),
      },
    ];
    for (const { kind, host, file, world } of compared) {
      const text = deployedText(host, file);
      const deployed = JSON.parse(text) as unknown;
      // Byte for byte what `nonstop render` printed (not Ansible's re-serialisation of it).
      assert.equal(text, `${JSON.stringify(deployed, null, 2)}\n`, `${host}:${file} as rendered`);
      const declared: Readonly<Record<string, string>> = WORLD_CONFIG_DIFFERENCES[kind];
      assert.deepEqual(undeclaredDifferences(kind, world, deployed, declared), [], `${host}:${file}`);
      log(
        `${host}:${file}: the world differs in ${
          configDifferences(kind, world, deployed)
            .map((d) => d.path)
            .join(', ') || 'nothing'
        }`,
      );
    }
    // The broker's own knock profiles are the builder's from the same facts.
    assert.deepEqual(
      JSON.parse(deployedText('broker', 'knock.json')),
      knockProfilesDocument({ client: 'broker1', rotation, gateways: [{ ...gw1, secret: brokerSecret }] }),
    );
  });

  test("gateway: the inventory's static folder is deployed read-only to the gateway and mounted", () => {
    const dir = join(roots.gateway, 'srv/nonstop/static/guestbook-1/assets');
    const file = join(dir, 'guestbook.css');
    assert.equal(
      readFileSync(file, 'utf8'),
      readFileSync(join(packageRoot(), 'core/app/guestbook/static/guestbook.css'), 'utf8'),
    );
    const group = readFileSync(join(roots.gateway, 'etc/group'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('nonstop-gateway:'));
    const gid = Number(group?.split(':')[2]);
    for (const [path, mode] of [
      [file, 0o640],
      [dir, 0o750],
    ] as const) {
      const st = statSync(path);
      assert.equal(st.mode & 0o777, mode, `${path} mode ${(st.mode & 0o777).toString(8)}`);
      assert.deepEqual([st.uid, st.gid], [0, gid], `${path} is root's, the gateway's group reads it`);
    }
    const config = JSON.parse(readFileSync(join(roots.gateway, 'etc/nonstop/gateway.json'), 'utf8')) as {
      static?: { path: string; dir: string }[];
    };
    assert.deepEqual(
      config.static?.map((m) => [m.path, m.dir]),
      [['/assets/', '/srv/nonstop/static/guestbook-1/assets']],
    );
  });

  test('secrets are readable by their daemon only', () => {
    const expect: [HostRole, string][] = [
      ['gateway', 'etc/nonstop/tls/gateway.key'],
      ['gateway', 'etc/nonstop/guard.json'],
      ['gateway', 'etc/nonstop/redis-password'],
      ['broker', 'etc/nonstop/ssh/id_ed25519'],
      ['broker', 'etc/nonstop/tls/broker.key'],
      ['broker', 'etc/nonstop/redis/gw1/users.acl'],
      ['broker', 'etc/nonstop/redis/gw1/nonstop-broker.password'],
      ['core', 'etc/nonstop/tls/core.key'],
    ];
    for (const [host, file] of expect) {
      const st = statSync(join(roots[host], file));
      assert.equal(st.mode & 0o777, 0o640, `${host}:/${file} mode ${(st.mode & 0o777).toString(8)}`);
    }
  });

  test("broker: gw1's own Redis on loopback, storing nothing, default user off, gw1 confined to its keys", async () => {
    // redis-server@nonstop-gw1.service reads /etc/redis/redis-nonstop-gw1.conf: a link to the rendered file.
    assert.equal(
      readlinkSync(join(roots.broker, 'etc/redis/redis-nonstop-gw1.conf')),
      '/etc/nonstop/redis/gw1/redis.conf',
    );
    const conf = readFileSync(join(roots.broker, 'etc/nonstop/redis/gw1/redis.conf'), 'utf8');
    assert.match(conf, /^bind 127\.0\.0\.1 -::1$/m);
    assert.match(conf, /^protected-mode yes$/m);
    assert.match(conf, /^port 6401$/m);
    assert.match(conf, /^aclfile \/etc\/nonstop\/redis\/gw1\/users\.acl$/m);
    assert.match(conf, /^appendonly no$/m);
    assert.match(conf, /^save ""$/m);
    assert.match(conf, /^maxmemory 256mb$/m);
    assert.match(conf, /^maxmemory-policy noeviction$/m);
    assert.match(conf, /^maxclients 32$/m);
    assert.match(conf, /^pidfile \/run\/redis-nonstop-gw1\/redis-server\.pid$/m);
    // Its own drop-in, as nonstop redis-acl rendered it (the role's defaults: maxmemory 256 MiB).
    const dropIn = readFileSync(
      join(roots.broker, 'etc/systemd/system/redis-server@nonstop-gw1.service.d/nonstop.conf'),
      'utf8',
    );
    assert.equal(dropIn, readFileSync(join(roots.broker, 'etc/nonstop/redis/gw1/unit.conf'), 'utf8'));
    assert.match(dropIn, /^LimitCORE=0$/m);
    assert.match(dropIn, /^MemoryMax=576M$/m);
    assert.match(dropIn, /^MemorySwapMax=0$/m);
    assert.match(dropIn, /^CPUWeight=\d+$/m);
    assert.match(dropIn, /^CPUQuota=(\d+%)?$/m);
    assert.equal(
      existsSync(join(roots.broker, 'etc/systemd/system/redis-server@.service.d/nonstop.conf')),
      false,
    );
    const workerPassword = readFileSync(
      join(roots.broker, 'etc/nonstop/redis/gw1/nonstop-broker.password'),
      'utf8',
    ).trim();
    // The real config and ACL file, on a Unix socket only, in a network namespace of its own.
    const sock = '/tmp/redis-acl-test.sock';
    const child = spawn(
      'unshare',
      [
        '--net',
        'chroot',
        roots.broker,
        'redis-server',
        '/etc/redis/redis-nonstop-gw1.conf',
        '--port',
        '0',
        '--unixsocket',
        sock,
        '--supervised',
        'no',
        '--logfile',
        '',
        '--daemonize',
        'no',
        '--appendonly',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    assert.ok(child.pid);
    set.track(child.pid);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      for (let i = 0; i < 100 && !existsSync(join(roots.broker, sock)); i++) await sleep(50);
      assert.ok(existsSync(join(roots.broker, sock)), `redis-server did not start:\n${output}`);
      const cli = async (user: string | undefined, ...args: string[]) => {
        const auth =
          user === undefined
            ? []
            : [
                '--user',
                user,
                '--pass',
                user === 'nonstop-broker'
                  ? workerPassword
                  : (secrets.vault_redis_passwords.gateways[user.slice('nonstop-gw-'.length)] ?? ''),
                '--no-auth-warning',
              ];
        const r = await chroot('broker', ['redis-cli', '-s', sock, ...auth, ...args]);
        return r.stdout.trim();
      };
      assert.match(await cli(undefined, 'GET', 'nonstop:gw-gw1:x'), /NOAUTH|NOPERM/);
      assert.equal(await cli('nonstop-gw-gw1', 'SET', 'nonstop:gw-gw1:x', '1'), 'OK');
      assert.match(await cli('nonstop-gw-gw1', 'SET', 'nonstop:gw-gw2:x', '1'), /NOPERM/);
      assert.match(await cli('nonstop-gw-gw1', 'GET', 'other'), /NOPERM/);
      assert.match(await cli('nonstop-gw-gw1', 'CONFIG', 'GET', 'bind'), /NOPERM/);
      assert.match(await cli('nonstop-gw-gw1', 'FLUSHALL'), /NOPERM/);
      assert.equal(await cli('nonstop-broker', 'GET', 'nonstop:gw-gw1:x'), '1');
      assert.match(await cli('nonstop-broker', 'ACL', 'LIST'), /NOPERM/);
      assert.match(await cli('nonstop-broker', 'GET', 'elsewhere:x'), /NOPERM/);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });

  test('broker: a tunnel per gateway (pinned fingerprint, own port, rotating knock) and the ACL of nonstop redis-acl', async () => {
    const config = JSON.parse(readFileSync(join(roots.broker, 'etc/nonstop/broker.json'), 'utf8')) as {
      redis: { username: string };
      gateways: {
        id: string;
        redis: Record<string, unknown>;
        ssh: Record<string, unknown> & { knock: { rotating: Record<string, unknown> } };
      }[];
    };
    const fingerprint = await run('ssh-keygen', ['-l', '-f', join(set.dir, 'secrets/ssh/gateway-gw1.pub')]);
    assert.equal(config.gateways.length, 1);
    const gw = config.gateways[0]!;
    assert.equal(gw.id, 'gw1');
    const rotating = gw.ssh.knock.rotating;
    assert.deepEqual(gw.ssh, {
      host: '198.51.100.10',
      port: 22,
      user: 'nonstop-tunnel',
      hostKeyFingerprint: fingerprint.stdout.split(' ')[1],
      privateKey: '/etc/nonstop/ssh/id_ed25519',
      remotePort: 6380,
      knock: {
        rotating: {
          client: 'broker1',
          secretFile: '/etc/nonstop/knock/gw1.secret',
          portMin: 20000,
          portMax: 29999,
          length: 4,
          stepSeconds: 30,
        },
      },
    });
    // The guard on the gateway knows the same client, secret and rotation.
    const guard = JSON.parse(readFileSync(join(roots.gateway, 'etc/nonstop/guard.json'), 'utf8')) as {
      rotating: { clients: { name: string; secret: string }[] } & Record<string, unknown>;
    };
    const secretFile = join(roots.broker, 'etc/nonstop/knock/gw1.secret');
    const secret = readFileSync(secretFile, 'utf8').trim();
    assert.deepEqual(guard.rotating.clients, [{ name: 'broker1', secret }]);
    for (const k of ['portMin', 'portMax', 'length', 'stepSeconds'])
      assert.equal(guard.rotating[k], rotating[k], k);
    const st = statSync(secretFile);
    assert.equal(st.mode & 0o777, 0o600);
    const owner = await chroot('broker', ['stat', '-c', '%U', '/etc/nonstop/knock/gw1.secret']);
    assert.equal(owner.stdout.trim(), 'nonstop-broker');
    // gw1's users.acl is exactly what `nonstop redis-acl` makes from broker.json, the vault's
    // gateway password and the worker and admin passwords made on the broker.
    assert.equal(config.redis.username, DEFAULT_WORKER_USER);
    assert.deepEqual(gw.redis, {
      port: 6401,
      passwordFile: '/etc/nonstop/redis/gw1/nonstop-broker.password',
    });
    const hostPassword = (user: string) =>
      readFileSync(join(roots.broker, `etc/nonstop/redis/gw1/${user}.password`), 'utf8').trim();
    const passwords: Record<string, string> = {
      [DEFAULT_WORKER_USER]: hostPassword(DEFAULT_WORKER_USER),
      [ADMIN_USER]: hostPassword(ADMIN_USER),
      [gatewayUser('gw1')]: secrets.vault_redis_passwords.gateways.gw1 ?? '',
    };
    const expected = renderAclFile(
      aclUsers({ prefix: 'nonstop', gatewayIds: ['gw1'] }, (user) => passwords[user] ?? 'missing'),
    );
    assert.equal(readFileSync(join(roots.broker, 'etc/nonstop/redis/gw1/users.acl'), 'utf8'), expected);
    // The gateway logs in as the matching user, with the matching password.
    const gateway = JSON.parse(readFileSync(join(roots.gateway, 'etc/nonstop/gateway.json'), 'utf8')) as {
      redis: { username: string; passwordFile: string; endpoints: { port: number }[] };
    };
    assert.equal(gateway.redis.username, gatewayUser('gw1'));
    assert.deepEqual(
      gateway.redis.endpoints.map((e) => e.port),
      [6380],
    );
    assert.equal(
      readFileSync(join(roots.gateway, gateway.redis.passwordFile), 'utf8').trim(),
      secrets.vault_redis_passwords.gateways.gw1,
    );
  });

  test('core: PostgreSQL listens on the private address only; the database belongs to the core', async () => {
    const r = await chroot('core', [
      'runuser',
      '-u',
      'postgres',
      '--',
      `/usr/lib/postgresql/${PG}/bin/postgres`,
      '-C',
      'listen_addresses',
      '-c',
      `config_file=/etc/postgresql/${PG}/main/postgresql.conf`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '10.0.0.30');
    const q = await chroot('core', [
      'runuser',
      '-u',
      'postgres',
      '--',
      'psql',
      '-p',
      '5432',
      '-tAc',
      "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'nonstop'",
    ]);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(q.stdout.trim(), 'nonstop-core');
    const core = JSON.parse(readFileSync(join(roots.core, 'etc/nonstop/core.json'), 'utf8')) as {
      listen: { host: string };
    };
    assert.equal(core.listen.host, '10.0.0.30');
  });

  for (const { host, unit } of UNITS) {
    test(`${unit}: systemd-analyze security rates it 2.0 or better`, async () => {
      const r = await run('systemd-analyze', ['security', '--offline=yes', `--root=${roots[host]}`, unit]);
      const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(r.stdout);
      assert.ok(m, `${r.stdout}${r.stderr}`);
      log(`${unit} exposure ${m[1]}`);
      assert.ok(Number(m[1]) <= 2.0, r.stdout);
      const text = readFileSync(join(roots[host], 'etc/systemd/system', unit), 'utf8');
      assert.match(text, /^User=nonstop-/m);
      const caps = /^CapabilityBoundingSet=(.*)$/m.exec(text)?.[1];
      const expected =
        unit === 'nonstop-guard.service'
          ? 'CAP_NET_RAW CAP_NET_ADMIN'
          : unit === 'nonstop-gateway.service'
            ? 'CAP_NET_BIND_SERVICE'
            : unit === 'nonstop-tunnel-routes.service'
              ? 'CAP_NET_ADMIN'
              : '';
      assert.equal(caps, expected);
      // A symlink to an absolute path inside the root filesystem: lstat, do not follow it.
      const wants = lstatSync(join(roots[host], 'etc/systemd/system/multi-user.target.wants', unit));
      assert.ok(wants.isSymbolicLink(), `${unit} is not enabled`);
    });
  }

  // The same three trees booted with their own systemd (systemd-nspawn --boot, a tmpfs overlay
  // over each so that the trees stay as converged), each in its world namespace: the units the
  // roles enabled start at boot in their sandboxes, and the request path works through them.
  // Last: it stops the PostgreSQL that the chroot tests use, so that the core's own starts.
  test(
    'booted with systemd: every unit starts in its sandbox and a request from inet answers 201',
    { timeout: 300_000 },
    async () => {
      await pgCtl('stop', '-m', 'fast', '-w');
      const { world, inet, gw, gwAddress, remotePort, ...hosts } = await provisionedWorld();
      const booted: Partial<Record<HostRole, BootedHost>> = {};
      let stopped: PromiseSettledResult<void>[];
      try {
        const started = Date.now();
        // All settled before going on, so that `finally` stops every container that did boot.
        const boots = await Promise.allSettled([
          // nspawn keeps CAP_NET_ADMIN only for a private network; nftables.service and the guard need it.
          BootedHost.boot('gateway', roots.gateway, { netns: gw.ns, capabilities: ['CAP_NET_ADMIN'] }).then(
            (h) => (booted.gateway = h),
          ),
          BootedHost.boot('broker', roots.broker, {
            netns: hosts.br.ns,
            capabilities: ['CAP_NET_ADMIN'],
          }).then((h) => (booted.broker = h)),
          BootedHost.boot('core', roots.core, { netns: hosts.core.ns, capabilities: ['CAP_NET_ADMIN'] }).then(
            (h) => (booted.core = h),
          ),
        ]);
        for (const b of boots) if (b.status === 'rejected') throw b.reason;
        const on = (host: HostRole) => {
          const h = booted[host];
          assert.ok(h, `${host} did not boot`);
          return h;
        };
        for (const host of Object.keys(HOSTS) as HostRole[]) {
          const state = await on(host).booted(120_000);
          assert.equal(state, 'running', `${host}: ${state}\n${on(host).output.slice(-3000)}`);
        }
        log(
          `three hosts booted (systemctl is-system-running): ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );

        const expectActive: Record<HostRole, string[]> = {
          gateway: ['nftables.service', 'nonstop-guard.service', 'ssh.service', 'nonstop-gateway.service'],
          broker: [
            'nftables.service',
            'nonstop-guard.service',
            'redis-server@nonstop-gw1.service',
            'nonstop-tunnel-routes.timer',
            'nonstop-broker.service',
          ],
          core: ['nftables.service', 'postgresql@15-main.service', 'nonstop-core.service'],
        };
        for (const [host, units] of Object.entries(expectActive) as [HostRole, string[]][]) {
          const r = await on(host).systemctl('is-active', ...units);
          assert.deepEqual(
            r.stdout.trim().split('\n'),
            units.map(() => 'active'),
            `${host}: ${units.join(' ')}`,
          );
        }

        // gw1's Redis runs with the budget of its own drop-in (nonstop redis-acl's unit.conf).
        const unit = readFileSync(join(roots.broker, 'etc/nonstop/redis/gw1/unit.conf'), 'utf8');
        const quota = /^CPUQuota=(\d*)%?$/m.exec(unit)?.[1];
        // systemd shows a quota per second of CPU time: 50% as 500ms, 100% as 1s, none as infinity.
        const perSecond =
          quota === undefined || quota === ''
            ? 'infinity'
            : Number(quota) % 100 === 0
              ? `${Number(quota) / 100}s`
              : Number(quota) < 100
                ? `${Number(quota) * 10}ms`
                : '[0-9.]+s';
        const shown = await on('broker').systemctl(
          'show',
          '-p',
          'CPUWeight',
          '-p',
          'CPUQuotaPerSecUSec',
          '-p',
          'MemoryMax',
          '-p',
          'LimitCORE',
          'redis-server@nonstop-gw1.service',
        );
        assert.match(shown.stdout, new RegExp(`^CPUWeight=${/^CPUWeight=(\d+)$/m.exec(unit)?.[1]}$`, 'm'));
        assert.match(shown.stdout, new RegExp(`^CPUQuotaPerSecUSec=${perSecond}$`, 'm'));
        assert.match(shown.stdout, new RegExp(`^MemoryMax=${576 * 1024 * 1024}$`, 'm'));
        assert.match(shown.stdout, /^LimitCORE=0$/m);

        // Each daemon runs as its unit says: its own user, exactly its capabilities (CAP_NET_BIND_SERVICE
        // is bit 10, CAP_NET_ADMIN 12, CAP_NET_RAW 13), no new privileges, a seccomp filter, / read-only.
        const sandboxes = [
          { host: 'gateway', unit: 'nonstop-guard.service', user: 'nonstop-guard', caps: 0x3000n },
          { host: 'gateway', unit: 'nonstop-gateway.service', user: 'nonstop-gateway', caps: 0x400n },
          { host: 'broker', unit: 'nonstop-broker.service', user: 'nonstop-broker', caps: 0n },
          { host: 'core', unit: 'nonstop-core.service', user: 'nonstop-core', caps: 0n },
        ] as const;
        for (const { host, unit, user, caps } of sandboxes) {
          const h = on(host);
          const p = await mainProcess(h, unit);
          const uid = (await h.exec('id', ['-u', user])).stdout.trim();
          assert.equal(p.status.get('Uid')?.split(/\s+/)[0], uid, `${unit} runs as ${user}`);
          for (const set of ['CapEff', 'CapPrm', 'CapBnd', 'CapAmb'] as const)
            assert.equal(
              BigInt(`0x${p.status.get(set) ?? ''}`),
              caps,
              `${unit}: ${set} ${p.status.get(set)}`,
            );
          assert.equal(p.status.get('NoNewPrivs'), '1', unit);
          assert.equal(p.status.get('Seccomp'), '2', `${unit}: no seccomp filter`);
          assert.match(p.rootMountOptions, /^ro\b/, `${unit}: / is ${p.rootMountOptions}`);
        }

        // The guard started under its sandbox (nft through AF_NETLINK with CAP_NET_ADMIN) and holds
        // the table: SSH is filtered from inet; the broker knocked and was let in.
        const table = await gw.check('nft', ['list', 'table', 'inet', 'nonstop']);
        assert.match(table, /type filter hook input priority filter; policy drop;/);
        const probe = await inet.runNode(AGENT, ['probe', gwAddress, '22', '--timeout', '1000']);
        assert.equal(probe.stdout.trim(), 'filtered', `inet → ${gwAddress}:22`);
        let brokerLog = '';
        for (let i = 0; i < 120 && !brokerLog.includes('"msg":"tunnel up"'); i++) {
          if (i > 0) await sleep(500);
          brokerLog = await on('broker').journal('nonstop-broker.service');
        }
        const guardLog = await on('gateway').journal('nonstop-guard.service');
        assert.match(
          brokerLog,
          /"msg":"tunnel up"/,
          `broker:\n${brokerLog.slice(-3000)}\nguard:\n${guardLog}`,
        );
        assert.match(guardLog, /"event":"started"/);
        // Its journal of spent knocks is in the unit's StateDirectory (a first start: none yet).
        assert.match(
          guardLog,
          /"event":"state","stateFile":"\/var\/lib\/nonstop-guard\/state","existed":false/,
        );
        assert.match(guardLog, /"event":"knock","outcome":"opened","clientIp":"[^"]+","client":"broker1"/);
        assert.doesNotMatch(guardLog, /window-error/);
        // nonstop-tunnel-routes ran at boot, before the broker: its way to gw1 ACKs at once.
        const route = await on('broker').exec('ip', ['route', 'show', `${gwAddress}/32`]);
        assert.match(route.stdout, /\bquickack 1\b/, `broker's route to gw1: ${route.stdout}${route.stderr}`);
        const listening = await gw.check('ss', ['-ltnpH']);
        assert.match(listening, new RegExp(`127\\.0\\.0\\.1:${remotePort}\\b.*sshd`), listening);

        let created = { code: '', body: '' };
        for (let i = 0; i < 40; i++) {
          created = await request(inet, `https://${gwAddress}/notes`, '{"title":"booted"}');
          if (created.code === '201') break;
          await sleep(500);
        }
        const journals = async () =>
          `gateway:\n${await on('gateway').journal('nonstop-gateway.service')}\nbroker:\n${brokerLog}` +
          `\ncore:\n${await on('core').journal('nonstop-core.service')}`;
        assert.equal(created.code, '201', `${created.code} ${created.body}\n${await journals()}`);
        const id = (JSON.parse(created.body) as { id?: string }).id ?? '';
        assert.match(id, /^[0-9a-f-]{36}$/, created.body);
        const got = await request(inet, `https://${gwAddress}/notes/${id}`);
        assert.equal(got.code, '200');
        assert.match(got.body, /"title":"booted"/);
        assert.equal((await request(inet, `https://${gwAddress}/notes`, '{"nope":1}')).code, '400');
        const rows = await on('core').exec('runuser', [
          '-u',
          'nonstop-core',
          '--',
          'psql',
          '-d',
          'nonstop',
          '-tAc',
          `SELECT count(*) FROM notes WHERE id = '${id}'`,
        ]);
        assert.equal(rows.stdout.trim(), '1', rows.stderr);

        // Ansible again, now onto the running systems (nsenter into each container) and managing
        // their services (nonstop_start_services: true), with the knock window and the broker's
        // concurrency changed, and the broker opening gw1 by single-packet authorization now
        // (its SPA keys in broker_spa_keys, the same in the gateway's gateway_spa_clients):
        // systemd reloads, the handlers restart exactly the guard and the broker, and the path
        // works again through the restarted units, the deployed guard opening for an SPA packet.
        const units = {
          gateway: ['nonstop-guard.service', 'nonstop-gateway.service', 'ssh.service'],
          broker: ['nonstop-broker.service', 'redis-server@nonstop-gw1.service'],
          core: ['nonstop-core.service', 'postgresql@15-main.service'],
        } as const;
        const invocations = async () => {
          const ids = new Map<string, string>();
          for (const [host, list] of Object.entries(units) as [HostRole, readonly string[]][])
            for (const unit of list)
              ids.set(unit, (await on(host).systemctl('show', '-P', 'InvocationID', unit)).stdout.trim());
          return ids;
        };
        const before = await invocations();
        // What a gateway taken out of the inventory would have left on the broker: its Redis
        // instance enabled (not running: "Stop" has nothing to do), its config link, unit drop-in
        // and folder. The converge retires them.
        // Planted and checked inside the container: its root is an overlay (--volatile=overlay)
        // over roots.broker, so what the converge removes is only gone from the container's view.
        const retired = [
          '/etc/redis/redis-nonstop-gwold.conf',
          '/etc/systemd/system/redis-server@nonstop-gwold.service.d',
          '/etc/nonstop/redis/gwold',
        ];
        const planted = await on('broker').exec('sh', [
          '-ec',
          [
            'install -d -m 0711 /etc/nonstop/redis/gwold',
            'echo old > /etc/nonstop/redis/gwold/nonstop-gw-gwold.password',
            'ln -s /etc/nonstop/redis/gwold/redis.conf /etc/redis/redis-nonstop-gwold.conf',
            'install -d /etc/systemd/system/redis-server@nonstop-gwold.service.d',
            "printf '[Service]\\nLimitCORE=0\\n' > /etc/systemd/system/redis-server@nonstop-gwold.service.d/nonstop.conf",
          ].join('; '),
        ]);
        assert.equal(planted.code, 0, planted.stderr);
        const enabled = await on('broker').systemctl('enable', 'redis-server@nonstop-gwold.service');
        assert.equal(enabled.code, 0, enabled.stderr);
        const inventory = join(set.dir, 'inventory-booted');
        writeInventory(inventory, 'community.docker.nsenter', (h) => `ansible_nsenter_pid: ${on(h).leader}`);
        const reconverging = Date.now();
        const spaKey = generateSpaKeys('broker1');
        const r = await playbook(inventory, {
          nonstop_start_services: true,
          gateway_knock_window_seconds: 45,
          broker_concurrency: 16,
          broker_spa_keys: { gw1: formatSpaKeyFile(spaKey) },
          gateway_spa_clients: [
            {
              name: 'broker1',
              key: spaKey.encryptionKey.toString('base64'),
              hmacKey: spaKey.hmacKey.toString('base64'),
            },
          ],
        });
        log(`converge onto the booted hosts: ${((Date.now() - reconverging) / 1000).toFixed(1)} s`);
        assert.equal(r.code, 0, r.stdout.slice(-6000) + r.stderr);
        const recapped = recap(r.stdout);
        const changed = (host: HostRole) => changedTasks(r.stdout, HOSTS[host]).sort();
        // The boot ruleset is the guard's table, which now diverts the SPA port too.
        assert.deepEqual(changed('gateway'), [
          'gateway : Configure the knock guard',
          'gateway : Install the ruleset for boot',
          'gateway : Restart guard',
        ]);
        assert.deepEqual(changed('broker'), [
          'broker : Apply tunnel routes',
          'broker : Configure the broker daemon',
          "broker : Disable the retired gateways' Redis",
          'broker : Install the SPA keys (one file per gateway opened by single-packet authorization)',
          "broker : Remove the retired gateways' Redis files",
          'broker : Restart broker',
        ]);
        assert.deepEqual(changed('core'), []);
        for (const path of retired) {
          const left = await on('broker').exec('stat', ['-c', '%F', path]);
          assert.notEqual(left.code, 0, `${path} is left: ${left.stdout}`);
        }
        const gone = await on('broker').systemctl('is-enabled', 'redis-server@nonstop-gwold.service');
        assert.notEqual(gone.stdout.trim(), 'enabled', gone.stdout);
        for (const name of Object.values(HOSTS)) assert.equal(recapped.get(name)?.failed, 0, name);
        const after = await invocations();
        for (const [unit, id] of before) {
          const restarted = unit === 'nonstop-guard.service' || unit === 'nonstop-broker.service';
          assert.ok(
            id !== '' && (after.get(unit) !== id) === restarted,
            `${unit}: ${id} → ${after.get(unit)}`,
          );
        }
        for (const [host, list] of Object.entries(units) as [HostRole, readonly string[]][]) {
          const active = await on(host).systemctl('is-active', ...list);
          assert.deepEqual(
            active.stdout.trim().split('\n'),
            list.map(() => 'active'),
            host,
          );
        }
        // The restarted broker sends the restarted guard (now with a 45 s window) an SPA packet
        // and tunnels again.
        const since = ['_SYSTEMD_INVOCATION_ID=' + (after.get('nonstop-guard.service') ?? '')];
        let guardNow = '';
        for (let i = 0; i < 120 && !guardNow.includes('"windowSeconds":45'); i++) {
          if (i > 0) await sleep(500);
          guardNow = (await on('gateway').exec('journalctl', ['--no-pager', '-o', 'cat', ...since])).stdout;
        }
        assert.match(
          guardNow,
          /"event":"spa","outcome":"opened","clientIp":"[^"]+","client":"broker1","openedFor":"[^"]+","windowSeconds":45/,
        );
        assert.match(guardNow, /"spaClients":1/);
        // The restarted guard read back what the first one journalled (the broker's knock), from
        // a file only its user can read.
        assert.match(
          guardNow,
          /"event":"state","stateFile":"\/var\/lib\/nonstop-guard\/state","existed":true/,
        );
        assert.equal(
          (
            await on('gateway').exec('stat', [
              '-c',
              '%a %U',
              '/var/lib/nonstop-guard',
              '/var/lib/nonstop-guard/state',
            ])
          ).stdout.trim(),
          '700 nonstop-guard\n600 nonstop-guard',
        );
        let again = { code: '', body: '' };
        for (let i = 0; i < 60; i++) {
          again = await request(inet, `https://${gwAddress}/notes`, '{"title":"after the handlers"}');
          if (again.code === '201') break;
          await sleep(500);
        }
        assert.equal(again.code, '201', `${again.code} ${again.body}\n${await journals()}`);
      } finally {
        const stopping = Date.now();
        stopped = await Promise.allSettled(Object.values(booted).map((h) => h.stop()));
        await world.close();
        log(`three hosts powered off: ${((Date.now() - stopping) / 1000).toFixed(1)} s`);
      }
      // Nothing of the containers is left (no process, no cgroup), or the test fails.
      for (const s of stopped) if (s.status === 'rejected') throw s.reason;
    },
  );
});
