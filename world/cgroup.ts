// The namespace world's stand-in for a systemd unit's resource controls: one cgroup per process
// (a gateway's Redis on a broker), holding the same CPUWeight, CPUQuota and MemoryMax that
// `nonstop redis-acl` renders into that Redis's unit drop-in, translated for cgroup v1 (cpu.shares,
// cpu.cfs_quota_us, memory.limit_in_bytes) or v2 (cpu.weight, cpu.max, memory.max). Groups are
// siblings directly under this process's own cgroup, as units are siblings in system.slice.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { join } from 'node:path';

/** What a unit drop-in sets, in systemd's terms. */
export interface CgroupBudget {
  /** CPUWeight: 1–10000, systemd's default 100. */
  readonly cpuWeight: number;
  /** CPUQuota in percent of one CPU; null: none. */
  readonly cpuQuotaPercent: number | null;
  /** MemoryMax in bytes. */
  readonly memoryMaxBytes: number;
}

/** Where this machine lets us make cgroups, or why not. */
export type CgroupSupport =
  | {
      readonly version: 1;
      /** The parent folder in the cpu hierarchy (ours). */
      readonly cpu: string;
      /** The parent folder in the memory hierarchy, when that controller is writable. */
      readonly memory?: string;
    }
  | {
      readonly version: 2;
      readonly parent: string;
      /** Whether the memory controller is enabled for the parent's children. */
      readonly memory: boolean;
      /**
       * The cpu.weight of the group our processes compete as, when they sit in a group beside
       * ours (the groups are made at the root, we are deeper); null when our processes are
       * plain tasks beside the groups (their nice then sets their weight).
       */
      readonly peerWeight: number | null;
    }
  | { readonly version: 0; readonly reason: string };

const ROOT = '/sys/fs/cgroup';
/** The CFS period systemd uses for CPUQuota (and the kernel's default). */
const PERIOD_US = 100_000;

/** The kernel's CFS weight of each nice level, -20 to 19 (kernel/sched/core.c sched_prio_to_weight). */
const NICE_WEIGHT = [
  88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916, 9548, 7620, 6100, 4904, 3906, 3121,
  2501, 1991, 1586, 1277, 1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87, 70, 56, 45, 36, 29, 23,
  18, 15,
];

export function niceWeight(nice: number): number {
  return NICE_WEIGHT[Math.min(19, Math.max(-20, Math.trunc(nice))) + 20]!;
}

/**
 * CPUWeight as cgroup v1's cpu.shares. systemd's translation is weight × 1024 / 100 (100, the
 * default, ↦ 1024, the weight of one nice-0 task). A group competes with what is beside it as
 * one entity of that weight, and a member's nice acts only inside its group; the world's other
 * processes (the broker, the gateways) sit beside the groups at `peerNice` (see peerNice), so
 * the group's weight is scaled to that nice's: a Redis then stands to the broker as its weight
 * to 100, as under systemd, whatever nice the world runs at.
 */
export function weightToShares(weight: number, peerNice = 0): number {
  return Math.min(262144, Math.max(2, Math.round((weight * niceWeight(peerNice)) / 100)));
}

/** CPUWeight as cgroup v2's cpu.weight (100 ↦ 100), scaled the same way for `peerNice`. */
export function weightToV2(weight: number, peerNice = 0): number {
  return Math.min(10000, Math.max(1, Math.round((weight * niceWeight(peerNice)) / 1024)));
}

/**
 * The nice that sets the weight our processes compete with beside the groups. A process's own
 * nice, except under autogroup (kernel.sched_autogroup_enabled, for processes in the root cpu
 * cgroup): there each session is one group whose weight is its autogroup nice (0 unless set),
 * and a process's nice acts only inside its session, as it does inside a cgroup.
 */
export function peerNice(): number {
  try {
    const enabled = readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1';
    const own = ownCgroups();
    const inRoot = (own.get('cpu') ?? own.get('') ?? '/') === '/';
    const m = /nice (-?\d+)/.exec(readFileSync('/proc/self/autogroup', 'utf8'));
    if (enabled && inRoot && m !== null) return Number(m[1]);
  } catch {
    // no autogroup in this kernel
  }
  return getPriority();
}

/** CPUQuota percent as the microseconds of each period the group may run (v1 and v2 alike). */
export function quotaUs(percent: number, periodUs = PERIOD_US): number {
  return Math.max(1000, Math.round((percent * periodUs) / 100));
}

/** The cgroup paths of this process, by v1 controller (and '' for the v2 hierarchy). */
function ownCgroups(): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m === null) continue;
    for (const c of m[1]!.split(',')) map.set(c, m[2]!);
  }
  return map;
}

/** Mount point and mount root of the v1 hierarchy holding `controller`, from mountinfo. */
function v1Mount(controller: string): { point: string; root: string } | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const [fstype, , superOptions = ''] = right.split(' ');
    if (fstype !== 'cgroup' || !superOptions.split(',').includes(controller)) continue;
    const fields = left.split(' ');
    return { root: fields[3] ?? '/', point: fields[4] ?? '' };
  }
  return undefined;
}

function v1Parent(controller: string, own: Map<string, string>): string | undefined {
  const mount = v1Mount(controller);
  const path = own.get(controller);
  if (mount === undefined || path === undefined) return undefined;
  // Inside a container the mount's root is our own group already.
  const rel = mount.root !== '/' && path.startsWith(mount.root) ? path.slice(mount.root.length) : path;
  return join(mount.point, rel);
}

/** Whether we may make a child group in `dir` (tried for real: permissions are not the whole story). */
function canCreateIn(dir: string): boolean {
  const probe = join(dir, `nonstop-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
    return true;
  } catch {
    return false;
  }
}

function readWords(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').trim().split(/\s+/);
  } catch {
    return [];
  }
}

/** v2: the controllers given to `dir`'s children, enabling cpu (and memory) if they are not. */
function enableV2(dir: string): { cpu: boolean; memory: boolean } {
  const has = () => new Set(readWords(join(dir, 'cgroup.subtree_control')));
  for (const c of ['cpu', 'memory']) {
    if (has().has(c) || !readWords(join(dir, 'cgroup.controllers')).includes(c)) continue;
    try {
      writeFileSync(join(dir, 'cgroup.subtree_control'), `+${c}`);
    } catch {
      // EBUSY: a non-root group with processes of its own cannot give controllers to children.
    }
  }
  const now = has();
  return { cpu: now.has('cpu'), memory: now.has('memory') };
}

/** Finds where this machine lets us put a process under a CPU budget (once per world). */
export function detectCgroups(): CgroupSupport {
  try {
    const own = ownCgroups();
    if (existsSync(join(ROOT, 'cgroup.controllers'))) {
      // Pure v2: our own group if it may have children with controllers, else the root's.
      const candidates = [join(ROOT, own.get('') ?? '/'), ROOT];
      for (const parent of candidates) {
        const enabled = enableV2(parent);
        if (!enabled.cpu || !canCreateIn(parent)) continue;
        const top = (own.get('') ?? '/').split('/')[1] ?? '';
        const peerWeight =
          parent === ROOT && top !== '' ? Number(readWords(join(ROOT, top, 'cpu.weight'))[0] ?? 100) : null;
        return { version: 2, parent, memory: enabled.memory, peerWeight };
      }
      return {
        version: 0,
        reason: `cgroup v2 at ${ROOT}: the cpu controller cannot be given to a child group`,
      };
    }
    const cpu = v1Parent('cpu', own);
    if (cpu === undefined) return { version: 0, reason: 'no cgroup v1 cpu hierarchy is mounted' };
    if (!canCreateIn(cpu)) return { version: 0, reason: `${cpu} is not writable` };
    const memory = v1Parent('memory', own);
    return { version: 1, cpu, ...(memory !== undefined && canCreateIn(memory) ? { memory } : {}) };
  } catch (err) {
    return { version: 0, reason: `cgroups could not be read: ${(err as Error).message}` };
  }
}

/** One process's budget, as cgroup folders: v1 one per hierarchy, v2 one. */
export class BudgetCgroup {
  #removed = false;

  private constructor(
    readonly version: 1 | 2,
    /** The cpu group (v1) or the group (v2). */
    readonly cpuDir: string,
    /** The memory group (v1), the group itself (v2), or undefined when memory is not ours to set. */
    readonly memoryDir: string | undefined,
    /** v2: see CgroupSupport. */
    readonly peerWeight: number | null = null,
  ) {}

  /**
   * Makes the group `name` with the budget. `peerNice`: the nice of the processes it competes
   * with (see weightToShares). Throws (and leaves nothing) if a write fails.
   */
  static create(support: CgroupSupport, name: string, budget: CgroupBudget, peerNice = 0): BudgetCgroup {
    if (support.version === 0) throw new Error(`no cgroup for ${name}: ${support.reason}`);
    const cg =
      support.version === 1
        ? new BudgetCgroup(1, join(support.cpu, name), support.memory && join(support.memory, name))
        : new BudgetCgroup(
            2,
            join(support.parent, name),
            support.memory ? join(support.parent, name) : undefined,
          );
    try {
      cg.#apply(budget, peerNice);
    } catch (err) {
      cg.removeSync();
      throw err;
    }
    return cg;
  }

  #apply(b: CgroupBudget, peerNice: number): void {
    mkdirSync(this.cpuDir);
    if (this.version === 1) {
      writeFileSync(join(this.cpuDir, 'cpu.shares'), String(weightToShares(b.cpuWeight, peerNice)));
      const period = Number(readWords(join(this.cpuDir, 'cpu.cfs_period_us'))[0] ?? PERIOD_US);
      writeFileSync(
        join(this.cpuDir, 'cpu.cfs_quota_us'),
        b.cpuQuotaPercent === null ? '-1' : String(quotaUs(b.cpuQuotaPercent, period)),
      );
      if (this.memoryDir !== undefined) {
        mkdirSync(this.memoryDir);
        writeFileSync(join(this.memoryDir, 'memory.limit_in_bytes'), String(b.memoryMaxBytes));
        // MemorySwapMax=0: memory and swap together no more than memory alone (where accounted).
        const memsw = join(this.memoryDir, 'memory.memsw.limit_in_bytes');
        if (existsSync(memsw)) writeFileSync(memsw, String(b.memoryMaxBytes));
      }
      return;
    }
    // Beside a group (ours), as that group's weight is to 100; beside our tasks, as to their nice.
    const weight =
      this.peerWeight === null
        ? weightToV2(b.cpuWeight, peerNice)
        : Math.min(10000, Math.max(1, Math.round((b.cpuWeight * this.peerWeight) / 100)));
    writeFileSync(join(this.cpuDir, 'cpu.weight'), String(weight));
    writeFileSync(
      join(this.cpuDir, 'cpu.max'),
      `${b.cpuQuotaPercent === null ? 'max' : quotaUs(b.cpuQuotaPercent)} ${PERIOD_US}`,
    );
    if (this.memoryDir !== undefined) {
      writeFileSync(join(this.memoryDir, 'memory.max'), String(b.memoryMaxBytes));
      const swap = join(this.memoryDir, 'memory.swap.max');
      if (existsSync(swap)) writeFileSync(swap, '0');
    }
  }

  /** Moves a process (all its threads) into the group. */
  add(pid: number): void {
    for (const dir of this.#dirs()) writeFileSync(join(dir, 'cgroup.procs'), String(pid));
  }

  /** The pids in the group (its cpu group). */
  pids(): number[] {
    return readWords(join(this.cpuDir, 'cgroup.procs'))
      .filter((w) => w !== '')
      .map(Number);
  }

  #dirs(): string[] {
    return this.memoryDir === undefined || this.memoryDir === this.cpuDir
      ? [this.cpuDir]
      : [this.cpuDir, this.memoryDir];
  }

  /**
   * Removes the group once its processes have exited (rmdir fails while one is inside: a
   * process just reaped may take a moment to leave it). Idempotent.
   */
  async remove(timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        this.removeSync();
        return;
      } catch (err) {
        if (Date.now() > end) throw err;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  /** One try at removing: for exit handlers, and `remove`'s loop. Throws EBUSY while occupied. */
  removeSync(): void {
    if (this.#removed) return;
    for (const dir of this.#dirs()) {
      try {
        rmdirSync(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    this.#removed = true;
  }

  get removed(): boolean {
    return this.#removed;
  }
}

/**
 * Removes groups whose name starts with `prefix-<pid>-` for a pid `isDead` says is gone: what
 * a world killed with SIGKILL left behind (their processes are killed with its namespaces).
 */
export function removeStrayCgroups(prefix: string, isDead: (pid: number) => boolean): void {
  // Where detectCgroups may have put them, looked up without writing anything.
  let parents: string[];
  try {
    const own = ownCgroups();
    parents = existsSync(join(ROOT, 'cgroup.controllers'))
      ? [join(ROOT, own.get('') ?? '/'), ROOT]
      : [v1Parent('cpu', own), v1Parent('memory', own)].filter((p): p is string => p !== undefined);
  } catch {
    return;
  }
  for (const parent of parents) {
    let names: string[];
    try {
      names = readdirSync(parent);
    } catch {
      continue;
    }
    for (const name of names) {
      const pid = Number(name.split('-')[1]);
      if (!name.startsWith(`${prefix}-`) || !Number.isInteger(pid) || !isDead(pid)) continue;
      try {
        rmdirSync(join(parent, name));
      } catch {
        // still occupied, or another cleaner raced us
      }
    }
  }
}
