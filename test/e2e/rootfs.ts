// Debian 12 root filesystems for the provisioning tests: one base image built with mmdebstrap
// and cached as a tarball outside the repo (keyed by suite, mirror and package list), unpacked
// once per host, and entered with `chroot`. Every mount made here is undone by dispose().
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../../world/world.js';

export const SUITE = 'bookworm';
export const CACHE_DIR = process.env.NONSTOP_TEST_ROOTFS_CACHE ?? '/var/cache/nonstop-test';

/**
 * What the roles install, so that a converge needs no network: the roles still declare every
 * package (apt reports "ok"), the cache just has them already.
 */
export const PACKAGES = [
  'acl',
  'ca-certificates',
  'iproute2',
  'libstdc++6',
  'nftables',
  'openssh-server',
  'openssl',
  'postgresql',
  'procps',
  'python3',
  'python3-apt',
  'python3-psycopg2',
  'redis-server',
  'sudo',
  'systemd',
  'systemd-timesyncd',
];

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end; never throws for a non-zero exit (the caller asserts). */
export function run(
  cmd: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      {
        cwd: options.cwd,
        env: options.env ?? process.env,
        timeout: options.timeoutMs ?? 600_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr: err !== null && code === -1 ? `${stderr}\n${err.message}` : stderr });
      },
    );
  });
}

/** The Debian mirror this machine uses (first `URIs:` or `deb` line of its APT sources). */
export function debianMirror(): string {
  for (const file of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const uri =
      /^URIs:\s*(\S+\/debian)\/?\s*$/m.exec(text) ??
      /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s/m.exec(text);
    if (uri?.[1] !== undefined) return uri[1];
  }
  throw new Error(
    'no Debian mirror found in /etc/apt/sources.list{,.d/debian.sources}; mmdebstrap needs one',
  );
}

export function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Why the provisioning tests cannot run here, or undefined. */
export function rootfsSkipReason(tools: readonly string[]): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (mmdebstrap, chroot, mounts); CI runs it as root';
  const missing = tools.filter((t) => !which(t));
  if (missing.length > 0) return `missing ${missing.join(', ')} (scripts/setup.sh installs them as root)`;
  return undefined;
}

/**
 * A cached image, built when missing (about a minute with a reachable mirror): by default the
 * provisioning tests' base (what the roles install, in mmdebstrap's `apt` variant).
 */
export async function baseImage(
  image: { readonly variant: string; readonly packages: readonly string[] } = {
    variant: 'apt',
    packages: PACKAGES,
  },
): Promise<{ path: string; built: boolean; ms: number }> {
  const mirror = debianMirror();
  // The default's key is the one the cache has always had (suite, mirror, packages).
  const variant = image.variant === 'apt' ? [] : [`variant=${image.variant}`];
  const key = createHash('sha256')
    .update([SUITE, mirror, ...variant, ...image.packages].join('\n'))
    .digest('hex')
    .slice(0, 12);
  const path = join(CACHE_DIR, `${SUITE}-${key}.tar`);
  if (existsSync(path)) return { path, built: false, ms: 0 };
  mkdirSync(CACHE_DIR, { recursive: true });
  const started = Date.now();
  const part = `${path}.${process.pid}.part`;
  const r = await run('mmdebstrap', [
    `--variant=${image.variant}`,
    '--format=tar',
    ...(image.packages.length > 0 ? [`--include=${image.packages.join(',')}`] : []),
    SUITE,
    part,
    mirror,
  ]);
  if (r.code !== 0) {
    rmSync(part, { force: true });
    throw new Error(`mmdebstrap failed (exit ${r.code}):\n${r.stderr.slice(-4000)}`);
  }
  renameSync(part, path);
  return { path, built: true, ms: Date.now() - started };
}

const ROOTFS_TMP = '/var/tmp/nonstop-rootfs-';

/**
 * What a killed run (a test timeout SIGKILLs the file's process) left: processes chrooted into
 * its trees (a daemonised PostgreSQL), mounts under them, the folder. A run's folder carries its
 * pid; only folders of runs that are gone are touched.
 */
export function removeRootfsStragglers(): void {
  for (const name of readdirSync('/var/tmp')) {
    if (!`/var/tmp/${name}`.startsWith(ROOTFS_TMP)) continue;
    const pid = Number(name.slice(ROOTFS_TMP.length - '/var/tmp/'.length).split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || isAlive(pid)) continue;
    const dir = `/var/tmp/${name}`;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readlinkSync(`/proc/${entry}/root`).startsWith(`${dir}/`)) process.kill(Number(entry), 'SIGKILL');
      } catch {
        // gone, or not ours to read
      }
    }
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(`${dir}/`))
      .sort()
      .reverse();
    for (const target of mounts)
      if (spawnSync('umount', [target]).status !== 0) spawnSync('umount', ['-l', target]);
    spawnSync('rm', ['-rf', '--one-file-system', dir]);
  }
}

/** A set of unpacked root filesystems under one temporary folder. */
export class RootfsSet {
  readonly dir: string;
  private readonly mounts: string[] = [];
  private readonly pids: number[] = [];
  private readonly onExit = () => this.disposeSync();

  constructor() {
    removeRootfsStragglers();
    this.dir = mkdtempSync(`${ROOTFS_TMP}${process.pid}-`);
    process.on('exit', this.onExit);
  }

  async unpack(name: string, image: string): Promise<string> {
    const root = join(this.dir, name);
    mkdirSync(root);
    const r = await run('tar', ['-xf', image, '-C', root]);
    if (r.code !== 0) throw new Error(`tar -xf ${image} failed: ${r.stderr}`);
    return root;
  }

  /** Mounts a proc file system at ROOT/proc (pg_ctl and systemctl look there); undone later. */
  mountProc(root: string): void {
    const target = join(root, 'proc');
    execFileSync('mount', ['-t', 'proc', 'proc', target]);
    this.mounts.push(target);
  }

  /** A process started inside a root filesystem, stopped by pid in dispose(). */
  track(pid: number): void {
    this.pids.push(pid);
  }

  disposeSync(): void {
    process.removeListener('exit', this.onExit);
    for (const pid of this.pids.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const target of this.mounts.splice(0).reverse()) {
      if (spawnSync('umount', [target]).status !== 0) spawnSync('umount', ['-l', target]);
    }
    // --one-file-system: should a mount have survived, never descend into it.
    spawnSync('rm', ['-rf', '--one-file-system', this.dir]);
  }
}
