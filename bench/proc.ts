// CPU time and memory of processes, from /proc (the bench runs on Linux, as root).
import { readFileSync, readdirSync } from 'node:fs';

export interface ProcSample {
  /** utime + stime, seconds. */
  readonly cpuSeconds: number;
  /** Of which in the kernel (stime). */
  readonly systemSeconds: number;
  readonly rssKiB: number;
  /** Peak resident set size so far (VmHWM). */
  readonly hwmKiB: number;
}

const TICKS_PER_SECOND = 100;

export function sampleProc(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of proc(5)
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return {
    cpuSeconds: ticks / TICKS_PER_SECOND,
    systemSeconds: Number(fields[12]) / TICKS_PER_SECOND,
    rssKiB: kib('VmRSS'),
    hwmKiB: kib('VmHWM'),
  };
}

/**
 * A tree's proportional set size: each page shared by n of its processes counted 1/n in each
 * (smaps_rollup's Pss). Unlike the sum of RSS it does not grow as more processes touch the same
 * shared memory (PostgreSQL's backends and its shared buffers): it is what the tree costs.
 */
export function treePssKiB(pid: number): number {
  return treePss(pid).pssKiB;
}

/** A tree's PSS, and the part of it that is shared memory (smaps_rollup's Pss_Shmem). */
export function treePss(pid: number): { pssKiB: number; shmemKiB: number } {
  let pssKiB = 0;
  let shmemKiB = 0;
  for (const p of processTree(pid)) {
    try {
      const rollup = readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
      pssKiB += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
      shmemKiB += Number(/^Pss_Shmem:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
    } catch {
      // exited
    }
  }
  return { pssKiB, shmemKiB };
}

/** The process and all its descendants (nginx's workers, sshd's sessions). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

/** Sum over a process tree; processes that exit meanwhile are skipped. */
export function sampleTree(pid: number): ProcSample {
  let cpuSeconds = 0;
  let systemSeconds = 0;
  let rssKiB = 0;
  let hwmKiB = 0;
  for (const p of processTree(pid)) {
    try {
      const s = sampleProc(p);
      cpuSeconds += s.cpuSeconds;
      systemSeconds += s.systemSeconds;
      rssKiB += s.rssKiB;
      hwmKiB += s.hwmKiB;
    } catch {
      // exited
    }
  }
  // The sum of each process's own peak (they need not have peaked together).
  return { cpuSeconds, systemSeconds, rssKiB, hwmKiB };
}

/**
 * Samples named processes every `everyMs` until stopped; keeps each one's peak RSS, with what
 * it forked (a broker's cells, sshd's sessions).
 */
export class RssWatcher {
  readonly peakKiB: Record<string, number> = {};
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly pids: Readonly<Record<string, number>>,
    everyMs = 250,
  ) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), everyMs);
  }

  #sample(): void {
    for (const [name, pid] of Object.entries(this.pids)) {
      try {
        const { rssKiB } = sampleTree(pid);
        if (rssKiB === 0) continue;
        this.peakKiB[name] = Math.max(this.peakKiB[name] ?? 0, rssKiB);
      } catch {
        // exited
      }
    }
  }

  stop(): Record<string, number> {
    clearInterval(this.#timer);
    this.#sample();
    return { ...this.peakKiB };
  }
}
