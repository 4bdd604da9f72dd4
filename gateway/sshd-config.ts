// OpenSSH configuration of every nonstop host, rendered once for the world and for Ansible
// (`nonstop render sshd`): a full sshd_config with a modern crypto profile for OpenSSH >= 9.2,
// for a role. The gateway's adds the tunnel user's Match block, and its authorized_keys lets
// each broker key do one thing only: listen on its own loopback port on the gateway (a remote
// forward to the broker side's Redis). A broker's lets admins jump on to the core's SSH and
// nowhere else. Admins log in with their own keys and users on every host.
import { errors } from '../lib/errors.js';

/** Key exchange, ciphers, MACs and key types that OpenSSH 9.2 offers and ssh2 can speak. */
export const SSH_CRYPTO = {
  kex: ['sntrup761x25519-sha512@openssh.com', 'curve25519-sha256', 'curve25519-sha256@libssh.org'],
  ciphers: ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com'],
  macs: ['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com'],
  hostKeys: ['ssh-ed25519'],
  userKeys: ['ssh-ed25519', 'sk-ssh-ed25519@openssh.com'],
} as const;

export type HostRole = 'gateway' | 'broker' | 'core';
export const HOST_ROLES: readonly HostRole[] = ['gateway', 'broker', 'core'];

/**
 * Keepalive probes. OpenSSH 9.2 probes every second interval (measured: interval 3 s →
 * probes 6 s apart) and gives up after count + 1 probes. Tunnels: 3 s × 3 freed a frozen
 * broker's port after 24 s, so its replacement can listen again. Admins: 15 s × 4, a session
 * survives a minute or two of a flaky link and a dead one still goes.
 */
export const KEEPALIVE = {
  tunnel: { intervalSeconds: 3, countMax: 3 },
  admin: { intervalSeconds: 15, countMax: 4 },
} as const;

export interface TunnelBroker {
  /** Broker id; the key's comment becomes `broker-<id>`. */
  readonly id: string;
  /** The broker's public key, as in a .pub file (`ssh-ed25519 AAAA… [comment]`). */
  readonly publicKey: string;
  /**
   * During a rotation (README, "Rotating credentials"): the key the broker had, allowed the same
   * one forward until the broker switched. sshd reads authorized_keys at each login: no reload.
   */
  readonly previousPublicKey?: string;
  /** The gateway loopback port this broker's tunnel listens on. */
  readonly port: number;
}

interface CommonSshdOptions {
  readonly port: number;
  /** Empty: every address (AddressFamily any). */
  readonly listenAddresses: readonly string[];
  readonly hostKeys: readonly string[];
  /** Groups sshd admits (AllowGroups); empty or absent admits every user. */
  readonly allowGroups?: readonly string[];
  /** Other users' AuthorizedKeysFile (admins); default OpenSSH's. */
  readonly authorizedKeysFile?: string;
  readonly pidFile?: string;
  /** Default "no". Tests log in as root with "prohibit-password". */
  readonly permitRootLogin?: 'no' | 'prohibit-password';
  /** Default true. Tests keep keys under /tmp, whose modes StrictModes refuses. */
  readonly strictModes?: boolean;
}

export interface GatewaySshdOptions extends CommonSshdOptions {
  readonly role?: 'gateway';
  /** The account brokers log in as; it gets only the remote forwards below. */
  readonly tunnelUser: string;
  /** The tunnel user's authorized_keys (rendered by `renderTunnelAuthorizedKeys`). */
  readonly tunnelAuthorizedKeysFile: string;
  readonly brokers: readonly TunnelBroker[];
}

export interface HostSshdOptions extends CommonSshdOptions {
  readonly role: 'broker' | 'core';
  /** broker: `host:port`s that members of allowGroups[0] may jump to (`ssh -J`), e.g. the core's SSH. */
  readonly jumpTargets?: readonly string[];
}

export type SshdOptions = GatewaySshdOptions | HostSshdOptions;

const PORT_MIN = 1;
const PORT_MAX = 65535;
const NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

function assertLine(value: string, what: string): void {
  if (/[\r\n]/.test(value) || value.trim() === '')
    throw errors.CONFIG_INVALID(`${what} must be one non-empty line`);
}

function assertWord(value: string, what: string): void {
  if (!/^[^\s#"]+$/.test(value))
    throw errors.CONFIG_INVALID(`${what} "${value}" must be one word without spaces, quotes or #`);
}

function assertPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < PORT_MIN || port > PORT_MAX) {
    throw errors.CONFIG_INVALID(`${what} must be a port number (got ${port})`);
  }
}

function assertName(name: string, what: string): void {
  if (!NAME.test(name)) throw errors.CONFIG_INVALID(`${what} "${name}" is not a user or group name`);
}

/** `10.0.0.30:22` or `[fd00::30]:22`. */
function assertJumpTarget(target: string): void {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(target);
  if (m === null) throw errors.CONFIG_INVALID(`jump target "${target}" is not host:port or [v6]:port`);
  assertPort(Number(m[3]), `jump target ${target}'s port`);
}

/** What every role shares: crypto, keys only, no forwarding, keepalives for admins. */
function baseLines(o: SshdOptions, role: HostRole): string[] {
  assertPort(o.port, 'port');
  for (const a of o.listenAddresses) assertWord(a, 'listen address');
  for (const k of o.hostKeys) assertLine(k, 'host key path');
  for (const g of o.allowGroups ?? []) assertName(g, 'allowGroups entry');
  if (o.authorizedKeysFile !== undefined) assertLine(o.authorizedKeysFile, 'authorizedKeysFile');
  if (o.pidFile !== undefined) assertLine(o.pidFile, 'pidFile');
  const groups = o.allowGroups ?? [];
  return [
    `# nonstop ${role} sshd: rendered by nonstop (gateway/sshd-config.ts); do not edit.`,
    `Port ${o.port}`,
    'AddressFamily any',
    ...o.listenAddresses.map((a) => `ListenAddress ${a}`),
    ...o.hostKeys.map((k) => `HostKey ${k}`),
    ...(o.pidFile === undefined ? [] : [`PidFile ${o.pidFile}`]),
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
    'IgnoreRhosts yes',
    'PermitEmptyPasswords no',
    `PermitRootLogin ${o.permitRootLogin ?? 'no'}`,
    `StrictModes ${o.strictModes === false ? 'no' : 'yes'}`,
    ...(groups.length === 0 ? [] : [`AllowGroups ${groups.join(' ')}`]),
    ...(o.authorizedKeysFile === undefined ? [] : [`AuthorizedKeysFile ${o.authorizedKeysFile}`]),
    // PAM for account and session only (authentication is publickey alone, above): without it
    // sshd refuses every account whose password is locked ("!", as Debian's system users and
    // cloud images' admin users are), and admin sessions get no loginuid for the audit trail.
    'UsePAM yes',
    'PermitUserEnvironment no',
    'MaxAuthTries 3',
    'MaxSessions 4',
    'LoginGraceTime 20',
    'MaxStartups 10:30:60',
    'UseDNS no',
    'PrintMotd no',
    'Compression no',
    'LogLevel VERBOSE',
    '',
    `ClientAliveInterval ${KEEPALIVE.admin.intervalSeconds}`,
    `ClientAliveCountMax ${KEEPALIVE.admin.countMax}`,
    'TCPKeepAlive no',
    '',
    // Nobody forwards anything by default; a Match block below opens exactly one kind.
    'AllowTcpForwarding no',
    'AllowStreamLocalForwarding no',
    'AllowAgentForwarding no',
    'X11Forwarding no',
    'GatewayPorts no',
    'PermitTunnel no',
    'PermitOpen none',
    'PermitListen none',
    'PermitUserRC no',
    // Ansible copies files over SFTP (in process: nothing to exec).
    'Subsystem sftp internal-sftp',
  ];
}

function tunnelBlock(o: GatewaySshdOptions): string[] {
  assertName(o.tunnelUser, 'tunnelUser');
  assertLine(o.tunnelAuthorizedKeysFile, 'tunnelAuthorizedKeysFile');
  const ports = [...new Set(o.brokers.map((b) => b.port))].sort((a, b) => a - b);
  for (const p of ports) assertPort(p, 'broker port');
  return [
    '',
    `Match User ${o.tunnelUser}`,
    `  AuthorizedKeysFile ${o.tunnelAuthorizedKeysFile}`,
    '  AllowTcpForwarding remote',
    '  PermitOpen none',
    `  PermitListen ${ports.length === 0 ? 'none' : ports.map((p) => `127.0.0.1:${p}`).join(' ')}`,
    '  GatewayPorts no',
    '  PermitTTY no',
    '  X11Forwarding no',
    '  AllowAgentForwarding no',
    '  AllowStreamLocalForwarding no',
    '  PermitTunnel no',
    '  PermitUserRC no',
    // No session channel at all (shell, exec, subsystem); forwarding still works.
    '  MaxSessions 0',
    '  ForceCommand /usr/sbin/nologin',
    // A broker that died silently loses its listener quickly (see KEEPALIVE).
    `  ClientAliveInterval ${KEEPALIVE.tunnel.intervalSeconds}`,
    `  ClientAliveCountMax ${KEEPALIVE.tunnel.countMax}`,
  ];
}

/** Admins of a broker may open `direct-tcpip` channels to the jump targets only (ProxyJump). */
function jumpBlock(o: HostSshdOptions): string[] {
  const targets = o.jumpTargets ?? [];
  if (targets.length === 0) return [];
  if (o.role !== 'broker') throw errors.CONFIG_INVALID('jumpTargets: only a broker is a jump host');
  const group = o.allowGroups?.[0];
  if (group === undefined) throw errors.CONFIG_INVALID('jumpTargets: needs allowGroups (the admins)');
  for (const t of targets) assertJumpTarget(t);
  return ['', `Match Group ${group}`, '  AllowTcpForwarding local', `  PermitOpen ${targets.join(' ')}`];
}

/** A full sshd_config for a host of `options.role` (default: gateway). */
export function renderSshdConfig(options: SshdOptions): string {
  const lines = isHostOptions(options)
    ? [...baseLines(options, options.role), ...jumpBlock(options)]
    : [...baseLines(options, 'gateway'), ...tunnelBlock(options)];
  return `${lines.join('\n')}\n`;
}

function isHostOptions(o: SshdOptions): o is HostSshdOptions {
  return o.role === 'broker' || o.role === 'core';
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
    const line = (publicKey: string, what: string, comment: string) => {
      // A .pub file's trailing newline is fine; a second line is not.
      assertLine(publicKey.trim(), `broker ${b.id}'s ${what}`);
      const [type, key] = publicKey.trim().split(/\s+/);
      if (type === undefined || key === undefined || !/^[A-Za-z0-9+/=]+$/.test(key)) {
        throw errors.CONFIG_INVALID(`broker ${b.id}'s ${what} is not "<type> <base64>"`);
      }
      if (!(SSH_CRYPTO.userKeys as readonly string[]).includes(type)) {
        throw errors.CONFIG_INVALID(`broker ${b.id}'s key type ${type} is not accepted by this sshd`);
      }
      return {
        key: `${type} ${key}`,
        text: `restrict,port-forwarding,permitlisten="127.0.0.1:${b.port}" ${type} ${key} ${comment}`,
      };
    };
    const current = line(b.publicKey, 'public key', `broker-${b.id}`);
    if (b.previousPublicKey === undefined) return [current.text];
    const previous = line(b.previousPublicKey, 'previous public key', `broker-${b.id}-previous`);
    if (previous.key === current.key)
      throw errors.CONFIG_INVALID(
        `broker ${b.id}'s previous public key is its public key (a rotation needs a new one)`,
      );
    return [current.text, previous.text];
  });
  return lines.length === 0 ? '' : `${lines.flat().join('\n')}\n`;
}
