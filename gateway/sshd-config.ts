// The gateway's OpenSSH configuration: a full sshd_config with a modern crypto profile for
// OpenSSH >= 9.2, and the tunnel user's authorized_keys, where each broker key may do one
// thing only: listen on its own loopback port on the gateway (a remote forward to the
// broker side's Redis). Admins log in on the same port with their own keys and users.
import { errors } from '../lib/errors.js';

/** Key exchange, ciphers, MACs and key types that OpenSSH 9.2 offers and ssh2 can speak. */
export const SSH_CRYPTO = {
  kex: ['sntrup761x25519-sha512@openssh.com', 'curve25519-sha256', 'curve25519-sha256@libssh.org'],
  ciphers: ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com'],
  macs: ['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com'],
  hostKeys: ['ssh-ed25519'],
  userKeys: ['ssh-ed25519', 'sk-ssh-ed25519@openssh.com', 'rsa-sha2-512', 'rsa-sha2-256'],
} as const;

export interface TunnelBroker {
  /** Broker id; the key's comment becomes `broker-<id>`. */
  readonly id: string;
  /** The broker's public key, as in a .pub file (`ssh-ed25519 AAAA… [comment]`). */
  readonly publicKey: string;
  /** The gateway loopback port this broker's tunnel listens on. */
  readonly port: number;
}

export interface SshdOptions {
  readonly port: number;
  readonly listenAddresses: readonly string[];
  readonly hostKeys: readonly string[];
  /** The account brokers log in as; it gets only the remote forwards below. */
  readonly tunnelUser: string;
  /** The tunnel user's authorized_keys (rendered by `renderTunnelAuthorizedKeys`). */
  readonly tunnelAuthorizedKeysFile: string;
  readonly brokers: readonly TunnelBroker[];
  /**
   * Keepalive probes: a broker that died without closing its connection loses its
   * listener, so its replacement can listen on the port again. OpenSSH 9.2 probes every
   * second interval (measured: interval 3 s → probes 6 s apart) and gives up after
   * count + 1 probes: 3 s × 3 freed a frozen broker's port after 24 s.
   */
  readonly clientAliveIntervalSeconds?: number;
  readonly clientAliveCountMax?: number;
  readonly pidFile?: string;
  /** Default "no". Tests log in as root with "prohibit-password". */
  readonly permitRootLogin?: 'no' | 'prohibit-password';
  /** Default true. Tests keep keys under /tmp, whose modes StrictModes refuses. */
  readonly strictModes?: boolean;
  /** Other users' AuthorizedKeysFile (admins); default OpenSSH's. */
  readonly authorizedKeysFile?: string;
}

const PORT_MIN = 1;
const PORT_MAX = 65535;

function assertLine(value: string, what: string): void {
  if (/[\r\n]/.test(value) || value.trim() === '')
    throw errors.CONFIG_INVALID(`${what} must be one non-empty line`);
}

function assertPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < PORT_MIN || port > PORT_MAX) {
    throw errors.CONFIG_INVALID(`${what} must be a port number (got ${port})`);
  }
}

/** A full sshd_config for the gateway. */
export function renderSshdConfig(options: SshdOptions): string {
  assertPort(options.port, 'port');
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(options.tunnelUser)) {
    throw errors.CONFIG_INVALID(`tunnelUser "${options.tunnelUser}" is not a user name`);
  }
  for (const a of options.listenAddresses) assertLine(a, 'listen address');
  for (const k of options.hostKeys) assertLine(k, 'host key path');
  assertLine(options.tunnelAuthorizedKeysFile, 'tunnelAuthorizedKeysFile');
  const ports = [...new Set(options.brokers.map((b) => b.port))].sort((a, b) => a - b);
  for (const p of ports) assertPort(p, 'broker port');
  const interval = options.clientAliveIntervalSeconds ?? 3;
  const count = options.clientAliveCountMax ?? 3;
  const lines = [
    '# nonstop gateway sshd: rendered; edit the gateway config, not this file.',
    `Port ${options.port}`,
    ...options.listenAddresses.map((a) => `ListenAddress ${a}`),
    ...options.hostKeys.map((k) => `HostKey ${k}`),
    ...(options.pidFile === undefined ? [] : [`PidFile ${options.pidFile}`]),
    '',
    `KexAlgorithms ${SSH_CRYPTO.kex.join(',')}`,
    `Ciphers ${SSH_CRYPTO.ciphers.join(',')}`,
    `MACs ${SSH_CRYPTO.macs.join(',')}`,
    `HostKeyAlgorithms ${SSH_CRYPTO.hostKeys.join(',')}`,
    `PubkeyAcceptedAlgorithms ${SSH_CRYPTO.userKeys.join(',')}`,
    'RequiredRSASize 3072',
    '',
    'AuthenticationMethods publickey',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'HostbasedAuthentication no',
    'PermitEmptyPasswords no',
    `PermitRootLogin ${options.permitRootLogin ?? 'no'}`,
    `StrictModes ${options.strictModes === false ? 'no' : 'yes'}`,
    ...(options.authorizedKeysFile === undefined ? [] : [`AuthorizedKeysFile ${options.authorizedKeysFile}`]),
    'UsePAM no',
    'PermitUserEnvironment no',
    'MaxAuthTries 3',
    'LoginGraceTime 20',
    'MaxStartups 10:30:60',
    'LogLevel VERBOSE',
    '',
    `ClientAliveInterval ${interval}`,
    `ClientAliveCountMax ${count}`,
    'TCPKeepAlive no',
    '',
    // Nobody forwards anything by default; the tunnel user's block opens exactly one kind.
    'AllowTcpForwarding no',
    'AllowStreamLocalForwarding no',
    'AllowAgentForwarding no',
    'X11Forwarding no',
    'GatewayPorts no',
    'PermitTunnel no',
    'PermitOpen none',
    'PermitListen none',
    '',
    `Match User ${options.tunnelUser}`,
    `  AuthorizedKeysFile ${options.tunnelAuthorizedKeysFile}`,
    '  AllowTcpForwarding remote',
    '  PermitOpen none',
    `  PermitListen ${ports.length === 0 ? 'none' : ports.map((p) => `127.0.0.1:${p}`).join(' ')}`,
    '  GatewayPorts no',
    '  PermitTTY no',
    '  X11Forwarding no',
    '  AllowAgentForwarding no',
    '  AllowStreamLocalForwarding no',
    '  PermitTunnel no',
    // No session channel at all (shell, exec, subsystem); forwarding still works.
    '  MaxSessions 0',
    '  ForceCommand /usr/sbin/nologin',
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * The tunnel user's authorized_keys: per broker, its key may only listen on its own port.
 * `restrict` turns off everything (pty, agent, X11, forwarding, user rc), then
 * `port-forwarding` with `permitlisten` gives back that one remote forward.
 */
export function renderTunnelAuthorizedKeys(brokers: readonly TunnelBroker[]): string {
  const seen = new Map<number, string>();
  const lines = brokers.map((b) => {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(b.id))
      throw errors.CONFIG_INVALID(`broker id "${b.id}" is not an id`);
    assertPort(b.port, `broker ${b.id}'s port`);
    const other = seen.get(b.port);
    if (other !== undefined)
      throw errors.CONFIG_INVALID(`brokers ${other} and ${b.id} both use port ${b.port}`);
    seen.set(b.port, b.id);
    // A .pub file's trailing newline is fine; a second line is not.
    assertLine(b.publicKey.trim(), `broker ${b.id}'s public key`);
    const [type, key] = b.publicKey.trim().split(/\s+/);
    if (type === undefined || key === undefined || !/^[A-Za-z0-9+/=]+$/.test(key)) {
      throw errors.CONFIG_INVALID(`broker ${b.id}'s public key is not "<type> <base64>"`);
    }
    if (!(SSH_CRYPTO.userKeys as readonly string[]).includes(type) && type !== 'ssh-rsa') {
      throw errors.CONFIG_INVALID(`broker ${b.id}'s key type ${type} is not accepted by this sshd`);
    }
    return `restrict,port-forwarding,permitlisten="127.0.0.1:${b.port}" ${type} ${key} broker-${b.id}`;
  });
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
