// The rendered gateway sshd_config and authorized_keys on a real OpenSSH sshd: it accepts
// the config, `sshd -T` shows the tunnel user's restrictions, and a broker key (through the
// ssh2 client the broker uses) can do exactly one thing: listen on 127.0.0.1:<its port>.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tcpConnect, type Socket } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { freePort } from '../helpers/redis-server.js';
import { spawn } from 'node:child_process';
import { repoRoot, tempDir, writeJson } from '../helpers/files.js';
import { runCli } from '../helpers/cli.js';
import { sshdDifferences, sshdEffective } from '../helpers/sshd-profile.js';
import { renderSshdConfig } from '../../gateway/sshd-config.js';
import { worldGatewaySshd } from '../../world/gateway-sshd.js';
import { SSHD, sshKeygen, startTestSshd, type SshKey, type TestSshd } from '../helpers/sshd.js';

const run = promisify(execFile);

async function sshdT(sshd: TestSshd, user: string): Promise<Map<string, string>> {
  const { stdout } = await run(SSHD, [
    '-T',
    '-f',
    sshd.configFile,
    '-C',
    `user=${user},host=x,addr=127.0.0.1`,
  ]);
  const settings = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const i = line.indexOf(' ');
    if (i > 0) settings.set(line.slice(0, i), line.slice(i + 1));
  }
  return settings;
}

function login(t: TestContext, sshd: TestSshd, key: SshKey): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    t.after(() => client.end());
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({
      host: '127.0.0.1',
      port: sshd.port,
      username: sshd.user,
      privateKey: readFileSync(key.privateKeyFile),
      readyTimeout: 5000,
    });
  });
}

const exec = (c: ssh2.Client, cmd: string) =>
  new Promise<string>((resolve, reject) => {
    c.exec(cmd, (err, stream) => {
      if (err) return reject(err);
      let out = '';
      stream.on('data', (d: Buffer) => (out += d.toString('utf8')));
      stream.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
      stream.on('close', (code: number | null) =>
        code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${out}`)),
      );
    });
  });

const forwardIn = (c: ssh2.Client, address: string, port: number) =>
  new Promise<number>((resolve, reject) =>
    c.forwardIn(address, port, (err, bound) => (err ? reject(err) : resolve(bound))),
  );

const forwardOut = (c: ssh2.Client, port: number) =>
  new Promise<void>((resolve, reject) =>
    c.forwardOut('127.0.0.1', 0, '127.0.0.1', port, (err, stream) => {
      if (err) return reject(err);
      stream.end();
      resolve();
    }),
  );

describe('gateway sshd config', () => {
  async function world(t: TestContext) {
    const dir = tempDir(t);
    const keys = { b1: await sshKeygen(dir, 'b1'), b2: await sshKeygen(dir, 'b2') };
    const ports = { b1: await freePort(), b2: await freePort() };
    const sshd = await startTestSshd(t, {
      brokers: [
        { id: 'b1', port: ports.b1 },
        { id: 'b2', port: ports.b2 },
      ],
      keys,
    });
    return { sshd, keys, ports };
  }

  test('sshd -t accepts it; sshd -T shows the tunnel user confined and everyone else forwarding nothing', async (t) => {
    const { sshd, ports } = await world(t);
    await run(SSHD, ['-t', '-f', sshd.configFile]);
    const tunnel = await sshdT(sshd, sshd.user);
    const expected: Record<string, string> = {
      allowtcpforwarding: 'remote',
      permitopen: 'none',
      permitlisten: [ports.b1, ports.b2]
        .sort((a, b) => a - b)
        .map((p) => `127.0.0.1:${p}`)
        .join(' '),
      gatewayports: 'no',
      permittty: 'no',
      x11forwarding: 'no',
      allowagentforwarding: 'no',
      allowstreamlocalforwarding: 'no',
      forcecommand: '/usr/sbin/nologin',
      maxsessions: '0',
      passwordauthentication: 'no',
      kbdinteractiveauthentication: 'no',
      authenticationmethods: 'publickey',
      clientaliveinterval: '3',
      clientalivecountmax: '3',
      ciphers: 'chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com',
      kexalgorithms: 'sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org',
      macs: 'hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com',
      hostkeyalgorithms: 'ssh-ed25519',
    };
    for (const [key, value] of Object.entries(expected)) assert.equal(tunnel.get(key), value, key);
    const admin = await sshdT(sshd, 'someadmin');
    assert.equal(admin.get('allowtcpforwarding'), 'no');
    assert.equal(admin.get('permitlisten'), 'none');
    assert.equal(admin.get('forcecommand'), 'none');
  });

  test('a broker key gets no shell, no exec, no local forward, and no listener but its own', async (t) => {
    const { sshd, keys, ports } = await world(t);
    const b1 = await login(t, sshd, keys.b1);

    await assert.rejects(exec(b1, 'id'), 'exec is refused');
    await assert.rejects(
      new Promise((resolve, reject) => b1.shell((err, stream) => (err ? reject(err) : resolve(stream)))),
      'a shell is refused',
    );
    await assert.rejects(forwardOut(b1, sshd.port), 'a local forward (direct-tcpip) is refused');
    await assert.rejects(forwardIn(b1, '127.0.0.1', ports.b2), "another broker's port is refused");
    await assert.rejects(forwardIn(b1, '127.0.0.1', await freePort()), 'any other port is refused');
    await assert.rejects(forwardIn(b1, '0.0.0.0', ports.b1), 'a public address is refused');
    await assert.rejects(forwardIn(b1, '', ports.b1), 'all addresses are refused');

    assert.equal(await forwardIn(b1, '127.0.0.1', ports.b1), ports.b1);
    // A connection to the gateway's loopback port reaches the broker through the tunnel.
    const arrived = new Promise<string>((resolve) => {
      b1.once('tcp connection', (info, accept) => {
        const stream = accept();
        stream.once('data', (d: Buffer) => {
          stream.end('pong');
          resolve(`${info.destIP}:${info.destPort} ${d.toString('utf8')}`);
        });
      });
    });
    const reply = await new Promise<string>((resolve, reject) => {
      const socket: Socket = tcpConnect(ports.b1, '127.0.0.1', () => socket.write('ping'));
      let got = '';
      socket.on('data', (d: Buffer) => (got += d.toString('utf8')));
      socket.on('end', () => resolve(got));
      socket.on('error', reject);
    });
    assert.equal(await arrived, `127.0.0.1:${ports.b1} ping`);
    assert.equal(reply, 'pong');

    // The other broker's key may listen on its own port only.
    const b2 = await login(t, sshd, keys.b2);
    await assert.rejects(forwardIn(b2, '127.0.0.1', ports.b1));
    assert.equal(await forwardIn(b2, '127.0.0.1', ports.b2), ports.b2);
  });

  test('an unknown key and a password are refused', async (t) => {
    const { sshd } = await world(t);
    const stranger = await sshKeygen(tempDir(t), 'stranger');
    await assert.rejects(login(t, sshd, stranger), /authentication methods failed/);
    await assert.rejects(
      new Promise((resolve, reject) => {
        const c = new ssh2.Client();
        t.after(() => c.end());
        c.once('ready', () => resolve(c));
        c.once('error', reject);
        c.connect({
          host: '127.0.0.1',
          port: sshd.port,
          username: sshd.user,
          password: 'x',
          readyTimeout: 5000,
        });
      }),
      /authentication methods failed/,
    );
  });

  test('a broker that stops answering loses its listener within 30 s, so it can come back', async (t) => {
    const { sshd, keys, ports } = await world(t);
    // The first broker in its own process, so that it can be frozen: alive to TCP, silent to SSH.
    const script = `
      const { Client } = require('ssh2');
      const c = new Client();
      c.on('ready', () => c.forwardIn('127.0.0.1', ${ports.b1}, (err) => console.log(err ? 'refused' : 'listening')));
      c.on('error', () => {});
      c.connect({ host: '127.0.0.1', port: ${sshd.port}, username: ${JSON.stringify(sshd.user)},
        privateKey: require('fs').readFileSync(${JSON.stringify(keys.b1.privateKeyFile)}) });`;
    const frozen = spawn(process.execPath, ['-e', script], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.after(() => {
      frozen.kill('SIGKILL');
    });
    const said = await new Promise<string>((resolve) =>
      frozen.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())),
    );
    assert.equal(said, 'listening');
    frozen.kill('SIGSTOP');
    const stopped = Date.now();

    const again = await login(t, sshd, keys.b1);
    await assert.rejects(
      forwardIn(again, '127.0.0.1', ports.b1),
      'the port is still held by the frozen session',
    );
    let took = -1;
    while (Date.now() - stopped < 35_000) {
      const ok = await forwardIn(again, '127.0.0.1', ports.b1).then(
        () => true,
        () => false,
      );
      if (ok) {
        took = Date.now() - stopped;
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    t.diagnostic(`the frozen session's listener was freed after ${took} ms`);
    assert.ok(took > 0 && took <= 30_000, `the listener was freed within 30 s (${took} ms)`);
    assert.ok(took >= 10_000, `not before the keepalive probes ran out (${took} ms)`);
  });
});

// What Ansible deploys (`nonstop render sshd`, from the input the common role writes for the
// example inventory) and what the world runs (world/gateway-sshd.ts) are one profile: sshd -T
// of both agrees on every key but the few a namespace world must change.
describe('one sshd profile for the world and the deployed hosts', () => {
  const deployedInput = (dir: string, role: 'gateway' | 'broker' | 'core', publicKey: string) => ({
    role,
    port: 22,
    listenAddresses: role === 'core' ? ['10.0.0.30'] : [],
    hostKeys: [join(dir, 'host_ed25519')],
    allowGroups: role === 'gateway' ? ['nonstop-ssh', 'nonstop-tunnel'] : ['nonstop-ssh'],
    authorizedKeysFile: '.ssh/authorized_keys',
    ...(role === 'gateway'
      ? {
          tunnelUser: 'nonstop-tunnel',
          tunnelAuthorizedKeysFile: '/etc/ssh/authorized_keys/%u',
          brokers: [{ id: 'broker1', publicKey, port: 6380 }],
        }
      : {}),
    ...(role === 'broker' ? { jumpTargets: ['10.0.0.30:22'] } : {}),
  });

  async function rendered(t: TestContext) {
    const dir = tempDir(t);
    const hostKey = await sshKeygen(dir, 'host_ed25519');
    const brokerKey = await sshKeygen(dir, 'broker1');
    const deployed: Record<string, string> = {};
    for (const role of ['gateway', 'broker', 'core'] as const) {
      const input = writeJson(dir, `${role}.json`, deployedInput(dir, role, brokerKey.publicKey));
      deployed[role] = join(dir, `${role}_sshd_config`);
      const r = await runCli(['render', 'sshd', '--input', input, '--out', deployed[role]]);
      assert.equal(r.code, 0, r.stderr);
      await run(SSHD, ['-t', '-f', deployed[role]]);
    }
    const world = join(dir, 'world_sshd_config');
    writeFileSync(
      world,
      renderSshdConfig(
        worldGatewaySshd({
          dir,
          hostKeyFile: hostKey.privateKeyFile,
          authorizedKeysFile: join(dir, 'keys'),
          brokers: [{ id: 'broker1', publicKey: brokerKey.publicKey, port: 6380 }],
        }),
      ),
    );
    await run(SSHD, ['-t', '-f', world]);
    return { deployed, world };
  }

  test('the gateway: tunnel user and admins get the same settings in both', async (t) => {
    const { deployed, world } = await rendered(t);
    const tunnel = await sshdEffective(deployed.gateway!, 'nonstop-tunnel');
    assert.deepEqual(sshdDifferences(tunnel, await sshdEffective(world, 'root')), []);
    const admin = await sshdEffective(deployed.gateway!, 'admin');
    assert.deepEqual(sshdDifferences(admin, await sshdEffective(world, 'admin')), []);
    // The values the two used to disagree on (issue 11, finding 3), now one choice.
    assert.equal(tunnel.get('maxsessions'), '0');
    assert.equal(tunnel.get('clientaliveinterval'), '3');
    assert.equal(tunnel.get('clientalivecountmax'), '3');
    assert.equal(admin.get('clientaliveinterval'), '15');
    assert.equal(admin.get('maxsessions'), '4');
    for (const s of [tunnel, admin]) {
      assert.equal(s.get('usepam'), 'yes');
      assert.equal(s.get('compression'), 'no');
      assert.equal(s.get('macs'), 'hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com');
      assert.equal(s.get('pubkeyacceptedalgorithms'), 'ssh-ed25519,sk-ssh-ed25519@openssh.com');
      assert.equal(s.get('allowgroups'), 'nonstop-ssh nonstop-tunnel');
    }
    assert.equal(tunnel.get('permitlisten'), '127.0.0.1:6380');
    assert.equal(admin.get('permitlisten'), 'none');
  });

  test("broker and core: the gateway admins' profile; the core listens privately, the broker jumps to it", async (t) => {
    const { deployed } = await rendered(t);
    const gatewayAdmin = await sshdEffective(deployed.gateway!, 'admin');
    const broker = await sshdEffective(deployed.broker!, 'admin');
    const core = await sshdEffective(deployed.core!, 'admin');
    const roleKeys = ['listenaddress', 'allowgroups'];
    assert.deepEqual(sshdDifferences(broker, gatewayAdmin, roleKeys), []);
    assert.deepEqual(sshdDifferences(core, gatewayAdmin, roleKeys), []);
    assert.equal(core.get('listenaddress'), '10.0.0.30:22');
    assert.equal(broker.get('listenaddress'), '[::]:22 0.0.0.0:22');
    // `admin` is in no group here; a member of the admins' group gets the jump (a group the
    // test machine has: the same file with root's group as the admins').
    assert.equal(broker.get('allowtcpforwarding'), 'no');
    const dir = tempDir(t);
    const input = writeJson(dir, 'broker.json', {
      role: 'broker',
      port: 22,
      hostKeys: ['/etc/ssh/ssh_host_ed25519_key'],
      allowGroups: ['root'],
      jumpTargets: ['10.0.0.30:22'],
    });
    const r = await runCli(['render', 'sshd', '--input', input]);
    assert.equal(r.code, 0, r.stderr);
    writeFileSync(join(dir, 'sshd_config'), r.stdout);
    const member = await sshdEffective(join(dir, 'sshd_config'), 'root');
    assert.equal(member.get('allowtcpforwarding'), 'local');
    assert.equal(member.get('permitopen'), '10.0.0.30:22');
    assert.equal(member.get('permitlisten'), 'none');
    const other = await sshdEffective(join(dir, 'sshd_config'), 'nobody');
    assert.equal(other.get('allowtcpforwarding'), 'no');
    assert.equal(other.get('permitopen'), 'none');
  });
});
