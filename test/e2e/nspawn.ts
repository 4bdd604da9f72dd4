// Boots a root filesystem with its own systemd (systemd-nspawn --boot) inside a network namespace
// of the test world, without changing the tree: --volatile=overlay puts a tmpfs over it, in the
// container's own mount namespace; or runs one command in a tree, to its end (ContainerRun). PID 1 of a test machine need not be systemd, so nothing is
// registered with systemd-machined (--register=no) and no scope is asked for (--keep-unit);
// instead each container gets a cgroup of its own, made here and removed in stop(), also when
// the test process exits early. Nothing is left behind: no process, cgroup, mount or state dir.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive } from '../../world/world.js';
import { run, type CommandResult } from './rootfs.js';

const NSPAWN_STATE = '/run/systemd/nspawn';

/**
 * The cgroup hierarchies systemd-nspawn works in, with this process's place in each: the
 * unified one alone (`/sys/fs/cgroup` is cgroup2), or the named `systemd` one and the unified
 * one beside it (a hybrid host).
 */
function hierarchies(): string[] {
  const own = readFileSync('/proc/self/cgroup', 'utf8');
  const path = (re: RegExp) => re.exec(own)?.[1] ?? '/';
  const isCgroup2 = (dir: string) => existsSync(join(dir, 'cgroup.controllers'));
  if (isCgroup2('/sys/fs/cgroup')) return [join('/sys/fs/cgroup', path(/^0::(\S+)$/m))];
  const found: string[] = [];
  if (existsSync('/sys/fs/cgroup/systemd/cgroup.procs'))
    found.push(join('/sys/fs/cgroup/systemd', path(/^\d+:name=systemd:(\S+)$/m)));
  if (isCgroup2('/sys/fs/cgroup/unified')) found.push(join('/sys/fs/cgroup/unified', path(/^0::(\S+)$/m)));
  if (found.length === 0) throw new Error('no systemd or cgroup2 hierarchy under /sys/fs/cgroup');
  return found;
}

/** Every pid in a cgroup and the cgroups below it. */
function pidsIn(dir: string): number[] {
  if (!existsSync(dir)) return [];
  const pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  for (const entry of readdirSync(dir, { withFileTypes: true }))
    if (entry.isDirectory()) pids.push(...pidsIn(join(dir, entry.name)));
  return pids;
}

/** rmdir of a cgroup and everything below it, deepest first (a cgroup is removed empty). */
function removeCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true }))
    if (entry.isDirectory()) removeCgroup(join(dir, entry.name));
  try {
    rmdirSync(dir);
  } catch {
    // a process is still leaving it; stop() tries again
  }
}

/**
 * Empty cgroups of earlier runs whose process is gone (killed with SIGKILL, say): their
 * containers died with the world's namespaces (removeStragglers), their cgroups stayed.
 */
function removeStaleCgroups(): void {
  for (const hierarchy of hierarchies()) {
    for (const name of readdirSync(hierarchy)) {
      const pid = Number(/^nonstop-nst-(\d+)-/.exec(name)?.[1]);
      if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue;
      if (pidsIn(join(hierarchy, name)).length === 0) removeCgroup(join(hierarchy, name));
    }
  }
}

export interface BootOptions {
  /** The network namespace (a world host's `ns`) the container lives in. */
  readonly netns: string;
  /** Capabilities beyond nspawn's default set (CAP_NET_ADMIN for a host that loads nftables). */
  readonly capabilities?: readonly string[];
}

const live = new Set<Container>();
let exitHandlerInstalled = false;

/**
 * systemd-nspawn on a tree, in a cgroup of its own: what booted hosts and one-off runs share
 * (starting it, its output, stopping it and removing everything it used).
 */
class Container {
  readonly machine: string;
  protected readonly child: ChildProcess;
  readonly #cgroups: string[];
  readonly #createdState: string[];
  /** systemd-nspawn's lock on the tree (it removes it on a clean exit, not when killed). */
  readonly #lockFile: string;
  protected readonly exited: Promise<number | null>;
  #output = '';
  #stopped = false;

  protected constructor(
    readonly name: string,
    root: string,
    nspawnArgs: readonly string[],
    onOutput?: (chunk: string) => void,
  ) {
    this.machine = `nst-${process.pid}-${randomBytes(3).toString('hex')}-${name}`.slice(0, 64);
    removeStaleCgroups();
    this.#cgroups = hierarchies().map((h) => join(h, `nonstop-${this.machine}`));
    for (const dir of this.#cgroups) mkdirSync(dir);
    this.#createdState = [NSPAWN_STATE, join(NSPAWN_STATE, 'propagate'), join(NSPAWN_STATE, 'locks')].filter(
      (d) => !existsSync(d),
    );
    const tree = statSync(root);
    this.#lockFile = join(NSPAWN_STATE, 'locks', `inode-${tree.dev}:${tree.ino}`);
    installExitHandler();
    // The shell moves itself into the container's cgroups, then becomes systemd-nspawn, which
    // puts itself in `supervisor` and the container in `payload` below them.
    this.child = spawn(
      'sh',
      [
        '-c',
        'for cg in $NONSTOP_CGROUPS; do echo $$ > "$cg/cgroup.procs" || exit 1; done; exec systemd-nspawn "$@"',
        'sh',
        `--directory=${root}`,
        '--register=no',
        '--keep-unit',
        `--machine=${this.machine}`,
        '--link-journal=no',
        ...nspawnArgs,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NONSTOP_CGROUPS: this.#cgroups.join(' '), TERM: 'dumb', SYSTEMD_COLORS: '0' },
      },
    );
    live.add(this);
    const keep = (c: Buffer) => {
      if (this.#output.length < 1_000_000) this.#output += c.toString();
      onOutput?.(c.toString());
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** What systemd-nspawn and the container printed, without terminal escapes. */
  get output(): string {
    // eslint-disable-next-line no-control-regex
    return this.#output.replace(/\x1b\[[0-9;]*m/g, '');
  }

  /**
   * SIGTERM to systemd-nspawn (a booted systemd halts), then removes what it used; throws if a
   * cgroup of it could not be removed.
   */
  async stop(graceMs = 60_000): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    for (let i = 0; i < 50 && this.#cgroups.some((cg) => pidsIn(cg).length > 0); i++) {
      if (i === 10) this.#killRest();
      await sleep(100);
    }
    this.#cleanup();
    const left = this.#cgroups.filter((cg) => existsSync(cg));
    if (left.length > 0) throw new Error(`${this.name}: cgroups left behind: ${left.join(' ')}`);
  }

  /** What remains in the container's cgroups was started by this container: SIGKILL it. */
  #killRest(): void {
    for (const pid of this.#cgroups.flatMap(pidsIn)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  #cleanup(): void {
    // systemd-nspawn itself lives in these cgroups: empty, it is gone and its lock is stale.
    const gone = this.#cgroups.every((cg) => pidsIn(cg).length === 0);
    for (const cg of this.#cgroups) removeCgroup(cg);
    const propagate = join(NSPAWN_STATE, 'propagate', this.machine);
    if (existsSync(propagate)) execFileSync('rm', ['-rf', '--one-file-system', propagate]);
    if (gone) rmSync(this.#lockFile, { force: true });
    // The state folders this run created, if no other container uses them meanwhile.
    for (const dir of [...this.#createdState].reverse()) {
      try {
        rmdirSync(dir);
      } catch {
        // not empty: another container's
      }
    }
    live.delete(this);
  }

  /** Last resort at process exit: SIGKILL, then the same cleanup. */
  stopSync(): void {
    this.#stopped = true;
    this.child.kill('SIGKILL');
    this.#killRest();
    const until = Date.now() + 2000;
    while (this.#cgroups.some((cg) => pidsIn(cg).length > 0) && Date.now() < until) {
      execFileSync('sleep', ['0.05']);
    }
    this.#cleanup();
  }
}

/** A root filesystem booted with its own systemd. */
export class BootedHost extends Container {
  #leader = 0;

  /** Starts `systemd-nspawn --boot` on `root`; resolves once PID 1 of the container is known. */
  static async boot(name: string, root: string, options: BootOptions): Promise<BootedHost> {
    const host = new BootedHost(name, root, [
      '--volatile=overlay',
      '--boot',
      `--network-namespace-path=/run/netns/${options.netns}`,
      '--console=read-only',
      ...(options.capabilities ?? []).map((c) => `--capability=${c}`),
    ]);
    // PID 1 of the container: the child of systemd-nspawn that runs systemd.
    for (let i = 0; i < 600 && host.#leader === 0; i++) {
      if (host.child.exitCode !== null) break;
      host.#leader = host.#findLeader();
      if (host.#leader === 0) await sleep(50);
    }
    if (host.#leader === 0) {
      await host.stop();
      throw new Error(`${name}: systemd-nspawn did not boot ${root}:\n${host.output}`);
    }
    return host;
  }

  /** PID 1 of the container, as this machine numbers it (for nsenter -t). */
  get leader(): number {
    return this.#leader;
  }

  #findLeader(): number {
    const pid = this.child.pid;
    if (pid === undefined) return 0;
    try {
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean);
      for (const c of children) if (readFileSync(`/proc/${c}/comm`, 'utf8').trim() === 'systemd') return +c;
    } catch {
      // not there yet, or gone
    }
    return 0;
  }

  /** Runs a command inside the container (all its namespaces), as root. */
  exec(command: string, args: readonly string[] = [], timeoutMs = 60_000): Promise<CommandResult> {
    return run('nsenter', ['-t', String(this.#leader), '-a', command, ...args], { timeoutMs });
  }

  systemctl(...args: string[]): Promise<CommandResult> {
    return this.exec('systemctl', ['--no-pager', ...args]);
  }

  /** The unit's journal, for failure messages and for what a daemon logged. */
  async journal(unit: string): Promise<string> {
    return (await this.exec('journalctl', ['--no-pager', '-o', 'cat', '-u', unit])).stdout;
  }

  /** `systemctl is-system-running --wait`: "running", or "degraded" with the failed units. */
  async booted(timeoutMs: number): Promise<string> {
    // Until PID 1 listens on /run/systemd/private, systemctl cannot connect: try again.
    const deadline = Date.now() + timeoutMs;
    let r: CommandResult;
    do {
      r = await this.exec('systemctl', ['is-system-running', '--wait'], Math.max(deadline - Date.now(), 1));
      if (r.stdout.trim() !== '' || Date.now() >= deadline) break;
      await sleep(200);
    } while (Date.now() < deadline);
    const state = r.stdout.trim();
    if (state === 'running') return state;
    const failed = await this.systemctl('list-units', '--failed', '--plain', '--no-legend');
    return `${state || `exit ${r.code} ${r.stderr.trim()}`}\n${failed.stdout}`;
  }
}

export interface RunOptions {
  /** Its own network namespace with only a loopback (default: the machine's network). */
  readonly privateNetwork?: boolean;
  /** Capabilities beyond nspawn's default set. */
  readonly capabilities?: readonly string[];
  /** The container's user (default root) and working directory. */
  readonly user?: string;
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** `HOST:CONTAINER` folders bound into the container. */
  readonly binds?: readonly string[];
  readonly timeoutMs: number;
  /** Each piece of output as it comes (progress for a long run). */
  readonly onOutput?: (chunk: string) => void;
}

/** One command in a container on `root` (not booted: nspawn's stub is PID 1), to its end. */
export class ContainerRun extends Container {
  static async run(
    name: string,
    root: string,
    command: readonly string[],
    options: RunOptions,
  ): Promise<CommandResult & { timedOut: boolean }> {
    const c = new ContainerRun(
      name,
      root,
      [
        '--as-pid2',
        '--console=pipe',
        ...(options.privateNetwork === true ? ['--private-network'] : []),
        ...(options.capabilities ?? []).map((cap) => `--capability=${cap}`),
        ...(options.user === undefined ? [] : [`--user=${options.user}`]),
        ...(options.cwd === undefined ? [] : [`--chdir=${options.cwd}`]),
        ...Object.entries(options.env ?? {}).map(([k, v]) => `--setenv=${k}=${v}`),
        ...(options.binds ?? []).map((b) => `--bind=${b}`),
        '--',
        ...command,
      ],
      options.onOutput,
    );
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      c.child.kill('SIGTERM');
    }, options.timeoutMs);
    const code = await c.exited;
    clearTimeout(timer);
    await c.stop(10_000);
    return { code: code ?? -1, stdout: c.output, stderr: '', timedOut };
  }
}

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', () => {
    for (const host of [...live]) host.stopSync();
  });
}

/** A unit's main process as seen inside the container: /proc/PID/status and how / is mounted. */
export async function mainProcess(
  host: BootedHost,
  unit: string,
): Promise<{ status: Map<string, string>; rootMountOptions: string }> {
  const pid = (await host.systemctl('show', '-P', 'MainPID', unit)).stdout.trim();
  const status = await host.exec('cat', [`/proc/${pid}/status`]);
  const mounts = await host.exec('cat', [`/proc/${pid}/mountinfo`]);
  if (pid === '0' || status.code !== 0 || mounts.code !== 0)
    throw new Error(`${host.name}: ${unit} has no main process (MainPID=${pid})`);
  // mountinfo: id parent major:minor root mount-point options …; the last mount on / is the one seen.
  const root = mounts.stdout
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[4] === '/')
    .at(-1);
  return {
    status: new Map(
      status.stdout
        .split('\n')
        .filter((l) => l.includes(':'))
        .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
    ),
    rootMountOptions: root?.[5] ?? '',
  };
}
