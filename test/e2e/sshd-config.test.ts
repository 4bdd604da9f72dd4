// The rendered gateway sshd_config and authorized_keys on a real OpenSSH sshd: it accepts
// the config, `sshd -T` shows the tunnel user's restrictions, and a broker key (through the
// ssh2 client the broker uses) can do exactly one thing: listen on 127.0.0.1:<its port>.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import { freePort } from '../helpers/redis-server.js';
import { spawn } from 'node:child_process';
import { repoRoot, tempDir } from '../helpers/files.js';
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
