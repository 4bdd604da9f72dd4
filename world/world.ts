// The test world: hosts as network namespaces joined by veth links to switch namespaces (one
// bridge per segment), real processes inside them, and everything removed afterwards — also
// when a test fails or the process is interrupted. It never touches the machine's own network
// namespace or ruleset: every link is created inside a namespace of this world.
//
// Segments: `public` (198.18.0.0/16, 2001:2:0:1::/64; the internet side: inet, gateways,
// brokers) and `private` (198.19.0.0/16, 2001:2:0:2::/64; brokers and core).
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  BudgetCgroup,
  detectCgroups,
  removeStrayCgroups,
  type CgroupBudget,
  type CgroupSupport,
} from './cgroup.js';

export type Segment = 'public' | 'private';

const NS_PREFIX = 'nst';
const SEGMENTS: Record<Segment, { v4: (n: number) => string; v6: (n: number) => string; dev: string }> = {
  public: {
    v4: (n) => `198.18.${n >> 8}.${n & 255}`,
    v6: (n) => `2001:2:0:1::${n.toString(16)}`,
    dev: 'pub0',
  },
  private: {
    v4: (n) => `198.19.${n >> 8}.${n & 255}`,
    v6: (n) => `2001:2:0:2::${n.toString(16)}`,
    dev: 'priv0',
  },
};

/** Why world tests cannot run here, or undefined when they can. Use as `{ skip: worldSkipReason() }`. */
export function worldSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, nftables, sshd); CI runs it as root';
  return undefined;
}

export interface ExecResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  readonly timeoutMs?: number;
  readonly input?: string;
}

/** A process started in a host; its output is kept line by line. */
export class HostProcess {
  readonly lines: string[] = [];
  readonly stderrLines: string[] = [];
  readonly exited: Promise<number | null>;
  #waiters: { test: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  #exitCode: number | null | undefined;

  constructor(readonly child: ChildProcess) {
    const keep = (stream: NodeJS.ReadableStream | null, into: string[]) => {
      if (stream === null) return;
      createInterface({ input: stream }).on('line', (line) => {
        if (into.length < 100000) into.push(line);
        for (const w of [...this.#waiters]) {
          if (w.test(line)) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      });
    };
    keep(child.stdout, this.lines);
    keep(child.stderr, this.stderrLines);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code) => {
        this.#exitCode = code;
        resolve(code);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.#exitCode === undefined;
  }

  /** Resolves with the first line (stdout or stderr, past or future) that passes `test`. */
  waitForLine(test: (line: string) => boolean, timeoutMs = 10000): Promise<string> {
    const seen = [...this.lines, ...this.stderrLines].find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w.resolve !== done);
        reject(
          new Error(
            `no matching output within ${timeoutMs} ms from pid ${this.pid}; last lines:\n` +
              [...this.lines.slice(-10), ...this.stderrLines.slice(-10)].join('\n'),
          ),
        );
      }, timeoutMs);
      const done = (line: string) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.#waiters.push({ test, resolve: done });
    });
  }

  /** JSON lines of stdout (pino logs), parsed; other lines are skipped. */
  jsonLines(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.lines) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not JSON
      }
    }
    return out;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Only this process, by pid. */
  async stop(graceMs = 3000): Promise<number | null> {
    if (!this.running) return this.#exitCode ?? null;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

export class Host {
  readonly addresses: Record<Segment, { v4: string[]; v6: string[] }> = {
    public: { v4: [], v6: [] },
    private: { v4: [], v6: [] },
  };

  constructor(
    private readonly world: World,
    readonly name: string,
    /** The namespace's name (for `ip netns exec`). */
    readonly ns: string,
  ) {}

  /** First public IPv4 address (the host's address on the internet side). */
  get ip4(): string {
    return this.addresses.public.v4[0] ?? this.addresses.private.v4[0] ?? '';
  }

  get ip6(): string {
    return this.addresses.public.v6[0] ?? this.addresses.private.v6[0] ?? '';
  }

  /** Runs a command in this host and waits for it; never throws on a non-zero exit. */
  exec(command: string, args: readonly string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
    return run('ip', ['netns', 'exec', this.ns, command, ...args], options);
  }

  /** Like exec, but throws with the output when the exit code is not 0. */
  async check(command: string, args: readonly string[] = [], options: ExecOptions = {}): Promise<string> {
    const r = await this.exec(command, args, options);
    if (r.code !== 0)
      throw new Error(`${this.name}: ${command} ${args.join(' ')} exited ${r.code}\n${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /**
   * Starts a long-running process in this host; the world stops it at close. No core dumps
   * (the world's daemons hold requests and keys in memory): prlimit sets the limit, soft and
   * hard, then execs `ip`, which execs the command, so the child's pid is the command's.
   */
  spawn(command: string, args: readonly string[] = [], env: NodeJS.ProcessEnv = {}): HostProcess {
    const child = spawn('prlimit', ['--core=0', '--', 'ip', 'netns', 'exec', this.ns, command, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    const proc = new HostProcess(child);
    this.world.track(proc);
    return proc;
  }

  /** Starts a compiled Node script (path relative to the package root) in this host. */
  node(script: string, args: readonly string[] = [], env: NodeJS.ProcessEnv = {}): HostProcess {
    return this.spawn(process.execPath, [join(packageRoot(), script), ...args], env);
  }

  /** Runs a compiled Node script in this host and waits for it. */
  runNode(script: string, args: readonly string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
    return this.exec(process.execPath, [join(packageRoot(), script), ...args], options);
  }
}

export interface HostOptions {
  /** Segments to attach to, with how many addresses to give it there (default 1). */
  readonly public?: boolean | number;
  readonly private?: boolean | number;
}

const live = new Set<World>();
let handlersInstalled = false;

export class World {
  /** Unique per run; every namespace of this world starts with it. */
  readonly prefix: string;
  /** A temp directory removed at close. */
  readonly dir: string;
  readonly hosts = new Map<string, Host>();
  readonly #namespaces: string[] = [];
  readonly #processes = new Set<HostProcess>();
  readonly #switches = new Map<Segment, string>();
  readonly #nextAddress: Record<Segment, number> = { public: 10, private: 10 };
  readonly #cgroups = new Set<BudgetCgroup>();
  /** tmpfs mounts of this world (under its folder), unmounted at close. */
  readonly #mounts: string[] = [];
  #cgroupSupport: CgroupSupport | undefined;
  #ports = 0;
  #cgroupCount = 0;
  #closed = false;

  private constructor() {
    this.prefix = `${NS_PREFIX}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.dir = mkdtempSync(join(tmpdir(), `${this.prefix}-`));
  }

  static create(): Promise<World> {
    const reason = worldSkipReason();
    if (reason !== undefined) return Promise.reject(new Error(`the test world ${reason}`));
    removeStragglers();
    installExitHandlers();
    const world = new World();
    live.add(world);
    return Promise.resolve(world);
  }

  track(proc: HostProcess): void {
    this.#processes.add(proc);
    void proc.exited.then(() => this.#processes.delete(proc));
  }

  /**
   * A tmpfs of `sizeMb` at `path` (a new folder under the world's), owned by `uid`:`gid` with
   * mode 0700: a disk of its own that a test can fill. Unmounted at close, also after a crash
   * (removeStragglers unmounts what a dead run left).
   */
  mountTmpfs(path: string, sizeMb: number, uid: number, gid: number): void {
    if (!path.startsWith(`${this.dir}/`)) throw new Error(`${path} is not under the world's folder`);
    mkdirSync(path, { recursive: true, mode: 0o700 });
    execFileSync('mount', [
      '-t',
      'tmpfs',
      '-o',
      `size=${sizeMb}m,mode=0700,uid=${uid},gid=${gid},nosuid,nodev`,
      'tmpfs',
      path,
    ]);
    this.#mounts.push(path);
  }

  /** Where this machine lets the world make cgroups, or why not (looked up once). */
  cgroupSupport(): CgroupSupport {
    this.#cgroupSupport ??= detectCgroups();
    return this.#cgroupSupport;
  }

  /**
   * A cgroup of this world with a unit's CPU and memory budget (world/cgroup.ts), removed at
   * close if not before; null when the machine gives us no cgroup controller to write.
   * `peerNice`: the nice of the processes it competes with.
   */
  budgetCgroup(name: string, budget: CgroupBudget, peerNice: number): BudgetCgroup | null {
    const support = this.cgroupSupport();
    if (support.version === 0) return null;
    const cg = BudgetCgroup.create(
      support,
      `${this.prefix}-${name}-${++this.#cgroupCount}`,
      budget,
      peerNice,
    );
    this.#cgroups.add(cg);
    return cg;
  }

  /** Removes a cgroup of this world once its processes have exited. */
  async removeCgroup(cg: BudgetCgroup): Promise<void> {
    await cg.remove();
    this.#cgroups.delete(cg);
  }

  /** Creates a host: its own namespace, loopback up, a veth link to each segment it joins. */
  async addHost(name: string, options: HostOptions = { public: true }): Promise<Host> {
    if (this.hosts.has(name)) throw new Error(`host ${name} exists already`);
    const ns = await this.#addNamespace(name);
    const host = new Host(this, name, ns);
    this.hosts.set(name, host);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    // Spoofed sources (flood tests) must not be dropped by reverse-path filtering.
    await ip([
      'netns',
      'exec',
      ns,
      'sysctl',
      '-qw',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
    ]);
    for (const segment of ['public', 'private'] as const) {
      const count = options[segment] === true ? 1 : options[segment] === false ? 0 : (options[segment] ?? 0);
      if (count > 0) await this.#attach(host, segment, count);
    }
    return host;
  }

  host(name: string): Host {
    const h = this.hosts.get(name);
    if (h === undefined) throw new Error(`no host ${name}`);
    return h;
  }

  /** Stops every process started in this world (by pid), then deletes its namespaces. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#processes].map((p) => p.stop(2000)));
    // Children our processes left behind (an sshd session, a forked server) die with the world.
    for (const ns of this.#namespaces) killInside(ns);
    for (const ns of this.#namespaces.splice(0).reverse()) await ip(['netns', 'del', ns]).catch(() => {});
    // Emptied now: their processes have exited.
    for (const cg of this.#cgroups) await this.removeCgroup(cg).catch(() => {});
    unmountUnder(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  /** Synchronous last-resort cleanup for process exit and signals. */
  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#processes) if (p.running) p.child.kill('SIGKILL');
    for (const ns of this.#namespaces.splice(0)) {
      killInside(ns);
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
    for (const cg of this.#cgroups) {
      try {
        cg.removeSync();
      } catch {
        // a process SIGKILLed a moment ago may not have left it yet: the next world's
        // removeStragglers takes it
      }
    }
    unmountUnder(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  async #addNamespace(name: string): Promise<string> {
    const ns = `${this.prefix}-${name}`;
    await ip(['netns', 'add', ns]);
    this.#namespaces.push(ns);
    return ns;
  }

  async #switch(segment: Segment): Promise<string> {
    let ns = this.#switches.get(segment);
    if (ns === undefined) {
      ns = await this.#addNamespace(`sw-${segment}`);
      this.#switches.set(segment, ns);
      await ip(['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
      await ip(['-n', ns, 'link', 'set', 'br0', 'up']);
    }
    return ns;
  }

  async #attach(host: Host, segment: Segment, count: number): Promise<void> {
    const sw = await this.#switch(segment);
    const { dev, v4, v6 } = SEGMENTS[segment];
    const port = `p${++this.#ports}`;
    await ip(['-n', host.ns, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', port, 'netns', sw]);
    await ip(['-n', sw, 'link', 'set', port, 'master', 'br0']);
    await ip(['-n', sw, 'link', 'set', port, 'up']);
    for (let i = 0; i < count; i++) {
      const n = this.#nextAddress[segment]++;
      const a4 = v4(n);
      const a6 = v6(n);
      await ip(['-n', host.ns, 'addr', 'add', `${a4}/16`, 'dev', dev]);
      await ip(['-n', host.ns, '-6', 'addr', 'add', `${a6}/64`, 'dev', dev, 'nodad']);
      host.addresses[segment].v4.push(a4);
      host.addresses[segment].v6.push(a6);
    }
    await ip(['-n', host.ns, 'link', 'set', dev, 'up']);
    // Carrier comes up asynchronously (linkwatch); wait so the first packet is not lost.
    for (let i = 0; i < 100; i++) {
      const r = await run('ip', ['-n', host.ns, '-o', 'link', 'show', 'dev', dev]);
      if (/ state UP /.test(r.stdout)) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`${host.name}: link ${dev} did not come up`);
  }
}

function run(command: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      { timeout: options.timeoutMs ?? 60000, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

async function ip(args: readonly string[]): Promise<void> {
  const r = await run('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.trim()}`);
}

/**
 * Deletes namespaces, temp directories and cgroups left by earlier runs whose process is gone (killed
 * with SIGKILL, say), after killing the processes still inside them (those runs started them).
 */
export function removeStragglers(): void {
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(name.split('-')[1]);
    if (!name.startsWith(`${NS_PREFIX}-`) || !Number.isInteger(pid) || pid === process.pid || isAlive(pid))
      continue;
    unmountUnder(join(tmpdir(), name));
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
  let names: string[];
  try {
    names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(`${NS_PREFIX}-`));
  } catch {
    names = [];
  }
  for (const ns of names) {
    const pid = Number(ns.split('-')[1]);
    if (!Number.isInteger(pid) || pid === process.pid || isAlive(pid)) continue;
    killInside(ns);
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // raced with another cleaner
    }
  }
  // Their processes were killed with their namespaces: their cgroups are empty now.
  removeStrayCgroups(NS_PREFIX, (pid) => pid !== process.pid && !isAlive(pid));
}

/** Unmounts (lazily, deepest first) every mount below `dir`, as /proc/self/mounts lists them. */
function unmountUnder(dir: string): void {
  let table: string;
  try {
    table = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return;
  }
  const below = table
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((mountPoint) => mountPoint.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const mountPoint of below) {
    try {
      execFileSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
    } catch {
      // gone meanwhile
    }
  }
}

/** SIGKILLs every process still inside one of this world's (or a dead run's) namespaces. */
function killInside(ns: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const p of pids) process.kill(Number(p), 'SIGKILL');
  } catch {
    // nothing left inside, or it exited meanwhile
  }
}

/** True while a process with this pid exists (also one we may not signal). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const w of [...live]) w.closeSync();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      // A program that handles the signal itself (`nonstop demo`) closes its worlds gracefully.
      if (process.listenerCount(signal) > 0) return;
      for (const w of [...live]) w.closeSync();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

/** The package root (where package.json is), from dist/world/world.js. */
export function packageRoot(): string {
  return join(import.meta.dirname, '..', '..');
}

/** Every process below `pid`, from /proc. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid …; comm may contain spaces, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}
