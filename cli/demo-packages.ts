// The Debian packages `nonstop demo` drives for real; installs the missing ones with apt-get.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, rmSync, writeFileSync } from 'node:fs';

/** Program the demo runs → the Debian package that ships it. */
const PROGRAMS: Readonly<Record<string, string>> = {
  ip: 'iproute2',
  nft: 'nftables',
  sshd: 'openssh-server',
  'ssh-keygen': 'openssh-client',
  'ssh-keyscan': 'openssh-client',
  'redis-server': 'redis-server',
  openssl: 'openssl',
  curl: 'curl',
};

const POLICY_RC_D = '/usr/sbin/policy-rc.d';
const DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

function installed(program: string): boolean {
  return DIRS.some((dir) => {
    try {
      accessSync(`${dir}/${program}`, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The packages whose programs are missing here. */
export function missingPackages(): string[] {
  return [
    ...new Set(
      Object.keys(PROGRAMS)
        .filter((p) => !installed(p))
        .map((p) => PROGRAMS[p]!),
    ),
  ].sort();
}

export function ensureDebianPackages(step: (line: string) => void): void {
  const missing = missingPackages();
  if (missing.length === 0) return;
  step(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Installing must not start the packages' system services (redis-server, sshd): the demo runs
  // its own inside namespaces. policy-rc.d is Debian's switch; one already there is left alone.
  const ownPolicy = !existsSync(POLICY_RC_D);
  if (ownPolicy) writeFileSync(POLICY_RC_D, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
      stdio: 'inherit',
      env,
    });
  } finally {
    if (ownPolicy) rmSync(POLICY_RC_D, { force: true });
  }
}
