// The hand-built peer nonstop is measured against, as people build it with autossh: nginx on a
// public host terminates TLS and proxies to a loopback port that an OpenSSH `ssh -R` tunnel,
// opened from a broker host, forwards to the core on the private network. nginx presents a
// broker client certificate to the core (the core only speaks mutual TLS) and keeps its
// upstream connections alive, as a careful hand-builder would configure it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Host, HostProcess, World } from '../world/world.js';
import { ensurePrivsepDir } from '../world/gateway-sshd.js';

const AGENT = 'dist/test/world/agent.js';
/** The gateway's loopback port that the tunnel forwards to the core. */
const TUNNEL_PORT = 16100;

export interface PeerOptions {
  readonly world: World;
  /** The host nginx and sshd run on (public segment). */
  readonly gateway: Host;
  /** The host that opens the tunnel (reaches the gateway and the core). */
  readonly broker: Host;
  readonly core: { readonly ip: string; readonly port: number; readonly serverName: string };
  /** The core's CA and a client cert/key it accepts (a broker's). */
  readonly internal: { readonly ca: string; readonly cert: string; readonly key: string };
  /** The certificate nginx shows clients. */
  readonly publicTls: { readonly cert: string; readonly key: string };
}

export interface Peer {
  readonly url: string;
  readonly nginx: HostProcess;
  readonly sshd: HostProcess;
  readonly ssh: HostProcess;
}

async function waitOpen(host: Host, ip: string, port: number, what: string, proc: HostProcess) {
  for (let i = 0; i < 100; i++) {
    const r = await host.runNode(AGENT, ['probe', ip, String(port), '--timeout', '300']);
    if (r.stdout.trim() === 'open') return;
    if (!proc.running) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`peer: ${what} did not come up: ${proc.stderrLines.slice(-10).join('\n')}`);
}

export async function startPeer(o: PeerOptions): Promise<Peer> {
  const dir = join(o.world.dir, 'peer');
  mkdirSync(dir, { recursive: true });
  ensurePrivsepDir();
  const keygen = (name: string) =>
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', join(dir, name)]);
  keygen('host_ed25519');
  keygen('tunnel_ed25519');
  const tunnelKey = readFileSync(join(dir, 'tunnel_ed25519.pub'), 'utf8').trim();
  writeFileSync(
    join(dir, 'authorized_keys'),
    `restrict,port-forwarding,permitlisten="127.0.0.1:${TUNNEL_PORT}" ${tunnelKey}\n`,
    { mode: 0o600 },
  );
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      'Port 22',
      `HostKey ${join(dir, 'host_ed25519')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'AllowTcpForwarding remote',
      'ClientAliveInterval 5',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const sshd = o.gateway.spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')]);
  await waitOpen(o.gateway, '127.0.0.1', 22, 'sshd', sshd);

  const hostPub = readFileSync(join(dir, 'host_ed25519.pub'), 'utf8').trim().split(' ');
  writeFileSync(join(dir, 'known_hosts'), `${o.gateway.ip4} ${hostPub[0]} ${hostPub[1]}\n`);
  const ssh = o.broker.spawn('ssh', [
    '-N',
    '-i',
    join(dir, 'tunnel_ed25519'),
    '-o',
    `UserKnownHostsFile=${join(dir, 'known_hosts')}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'ExitOnForwardFailure=yes',
    '-o',
    'ServerAliveInterval=5',
    '-o',
    'BatchMode=yes',
    '-R',
    `127.0.0.1:${TUNNEL_PORT}:${o.core.ip}:${o.core.port}`,
    `root@${o.gateway.ip4}`,
  ]);
  await waitOpen(o.gateway, '127.0.0.1', TUNNEL_PORT, 'ssh -R tunnel', ssh);

  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    [
      // As Debian's default: one worker per core.
      'worker_processes auto;',
      'user root;',
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'error.log')} warn;`,
      'events { worker_connections 4096; }',
      'http {',
      // As Debian's default: every request logged (nonstop's gateway logs each one too).
      `  access_log ${join(dir, 'access.log')};`,
      `  client_body_temp_path ${dir}/body;`,
      `  proxy_temp_path ${dir}/proxy;`,
      `  fastcgi_temp_path ${dir}/fastcgi;`,
      `  uwsgi_temp_path ${dir}/uwsgi;`,
      `  scgi_temp_path ${dir}/scgi;`,
      '  client_max_body_size 64k;',
      '  client_body_buffer_size 64k;',
      `  upstream core { server 127.0.0.1:${TUNNEL_PORT}; keepalive 64; }`,
      '  server {',
      '    listen 443 ssl;',
      `    ssl_certificate ${o.publicTls.cert};`,
      `    ssl_certificate_key ${o.publicTls.key};`,
      '    keepalive_requests 100000;',
      '    location / {',
      '      proxy_pass https://core;',
      '      proxy_http_version 1.1;',
      '      proxy_set_header Connection "";',
      `      proxy_ssl_certificate ${o.internal.cert};`,
      `      proxy_ssl_certificate_key ${o.internal.key};`,
      `      proxy_ssl_trusted_certificate ${o.internal.ca};`,
      '      proxy_ssl_verify on;',
      // The core speaks TLS 1.3 only; nginx 1.22 (Debian 12) offers up to 1.2 unless told.
      '      proxy_ssl_protocols TLSv1.3;',
      `      proxy_ssl_name ${o.core.serverName};`,
      '      proxy_ssl_server_name on;',
      '      proxy_ssl_session_reuse on;',
      '    }',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const nginx = o.gateway.spawn('nginx', ['-c', conf, '-g', 'daemon off;']);
  await waitOpen(o.gateway, '127.0.0.1', 443, 'nginx', nginx);
  return { url: `https://${o.gateway.ip4}`, nginx, sshd, ssh };
}
