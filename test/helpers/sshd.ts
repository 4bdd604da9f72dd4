// A real OpenSSH sshd for one test: its own config, throwaway host key and pid file in a
// temp dir, 127.0.0.1 on a free port, foreground (-D -e), killed by pid afterwards. The
// tunnel user is the current user (root), confined by the rendered Match block.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import {
  renderSshdConfig,
  renderTunnelAuthorizedKeys,
  type TunnelBroker,
} from '../../gateway/sshd-config.js';
import { freePort } from './redis-server.js';
import { worldGatewaySshd } from '../../world/gateway-sshd.js';
import { sshKeygen, type SshKey } from '../../world/three-tier.js';
import { descendants } from '../../world/world.js';

export { descendants, sshKeygen, type SshKey };

export const SSHD = '/usr/sbin/sshd';

export interface TestSshd {
  readonly port: number;
  readonly user: string;
  readonly dir: string;
  readonly configFile: string;
  readonly hostKey: SshKey;
  /** Kills sshd (SIGKILL: connections die without a goodbye, like a crashed host). */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same host key. */
  start(): Promise<void>;
}

export async function startTestSshd(
  t: TestContext,
  options: { brokers: readonly Omit<TunnelBroker, 'publicKey'>[]; keys: Readonly<Record<string, SshKey>> },
): Promise<TestSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'nonstop-test-sshd-'));
  const port = await freePort();
  const user = userInfo().username;
  const hostKey = await sshKeygen(dir, 'host_ed25519');
  const brokers = options.brokers.map((b) => ({ ...b, publicKey: options.keys[b.id]!.publicKey }));
  const authorizedKeys = join(dir, 'tunnel_authorized_keys');
  writeFileSync(authorizedKeys, renderTunnelAuthorizedKeys(brokers), { mode: 0o600 });
  const configFile = join(dir, 'sshd_config');
  writeFileSync(
    configFile,
    // The world's profile, on loopback and a free port.
    renderSshdConfig(
      worldGatewaySshd({
        dir,
        port,
        listenAddresses: ['127.0.0.1'],
        hostKeyFile: hostKey.privateKeyFile,
        authorizedKeysFile: authorizedKeys,
        brokers,
        tunnelUser: user,
      }),
    ),
  );
  let child: ChildProcess | undefined;
  // The per-connection processes sshd forks outlive their parent, so they go too: a killed
  // gateway sshd drops every session at once, like a crashed host.
  const kill = async () => {
    const c = child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
    const exited = new Promise((r) => c.once('exit', r));
    const pids = [c.pid, ...descendants(c.pid)];
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await exited;
  };
  const start = async () => {
    const c = spawn(SSHD, ['-D', '-e', '-f', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child = c;
    const end = Date.now() + 5000;
    while (!(await banner(port))) {
      if (Date.now() > end || c.exitCode !== null) {
        await kill();
        throw new Error(`sshd did not start on port ${port}: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 30));
    }
  };
  t.after(async () => {
    await kill();
    rmSync(dir, { recursive: true, force: true });
  });
  await start();
  return { port, user, dir, configFile, hostKey, kill, start };
}

/** True once something on the port greets with an SSH banner. */
function banner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(500, () => socket.destroy());
    socket.once('data', (d: Buffer) => {
      socket.destroy();
      resolve(d.toString('latin1').startsWith('SSH-2.0-'));
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}
