// The world's gateway sshd options: the deployed profile (gateway/sshd-config.ts renders both),
// with what a namespace world must change and nothing else: root is the tunnel user (the world
// runs as root) and logs in with prohibit-password, files live in the world's folder (so no
// StrictModes, no AllowGroups: root is its only user). test/e2e/sshd-config.test.ts and the
// Ansible converge test compare its `sshd -T` with the deployed one's, key by key.
import { mkdirSync } from 'node:fs';
import type { GatewaySshdOptions, TunnelBroker } from '../gateway/sshd-config.js';

/**
 * sshd's privilege separation folder, which `sshd -t`, `sshd -T` and sshd itself need: a machine
 * whose sshd service never ran has none.
 */
export function ensurePrivsepDir(): void {
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
}

export interface WorldSshdFiles {
  readonly dir: string;
  readonly hostKeyFile: string;
  readonly authorizedKeysFile: string;
  readonly brokers: readonly TunnelBroker[];
  readonly listenAddresses?: readonly string[];
  readonly port?: number;
  /** Default root (the world runs as root). */
  readonly tunnelUser?: string;
}

/** The settings in which the world's sshd may differ from a deployed one (sshd -T keys). */
export const WORLD_SSHD_DIFFERENCES = [
  'port',
  'listenaddress',
  'hostkey',
  'pidfile',
  'permitrootlogin',
  'strictmodes',
  'allowgroups',
  'authorizedkeysfile',
  'permitlisten',
] as const;

export function worldGatewaySshd(files: WorldSshdFiles): GatewaySshdOptions {
  return {
    role: 'gateway',
    port: files.port ?? 22,
    listenAddresses: files.listenAddresses ?? ['0.0.0.0'],
    hostKeys: [files.hostKeyFile],
    pidFile: `${files.dir}/sshd.pid`,
    tunnelUser: files.tunnelUser ?? 'root',
    tunnelAuthorizedKeysFile: files.authorizedKeysFile,
    authorizedKeysFile: 'none',
    brokers: files.brokers,
    permitRootLogin: 'prohibit-password',
    strictModes: false,
  };
}
