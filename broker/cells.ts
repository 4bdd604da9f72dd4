// A process per gateway. `nonstop broker` runs each gateway's worker and tunnel in a process of
// its own (a cell: `nonstop broker --gateway ID`, forked with an IPC channel) and keeps them
// running: the status endpoint, the restarts and the shutdown are the parent's, the work is the
// cells'. What one gateway makes its cell do (parse a flood of SSH messages, screen forged jobs,
// carry an O(N) answer) then runs on that cell's event loop, which the kernel schedules against
// the others as a task of its own, and not in a queue in front of every other gateway's
// requests; a cell that runs out of heap (its own V8 limit) dies alone and is started again.
// The cells run as the same user and can read the same files (one SSH key serves every
// tunnel): this separates load and faults, not privileges.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RelayedAnswer } from '../lib/acme-relay.js';
import type { Logger } from '../lib/log.js';
import { ChallengeRelayHub, type ServedNames } from './acme-relay-hub.js';
import type { CellStatus, StatusSnapshot } from './status-server.js';
import type { TunnelStatus } from './tunnel.js';

/** Parent → cell. */
export type ToCell =
  | { readonly type: 'snapshot'; readonly id: number }
  | { readonly type: 'close' }
  /** What `source` published that this cell's gateway serves too: its inbox's `source` entry. */
  | { readonly type: 'acme-relay'; readonly source: string; readonly answers: readonly RelayedAnswer[] };
/** Cell → parent. */
export type FromCell =
  /** Its worker and tunnel are set up; the snapshot shows it until it answers a request. */
  | { readonly type: 'ready'; readonly snapshot: StatusSnapshot }
  | { readonly type: 'snapshot'; readonly id: number; readonly snapshot: StatusSnapshot }
  /** Its gateway's ACME outbox as the cell checked it (the parent checks it again). */
  | { readonly type: 'acme-published'; readonly answers: readonly RelayedAnswer[] };

export interface CellOptions {
  readonly configFile: string;
  readonly gatewayIds: readonly string[];
  /** V8's old-generation limit of each cell, in MiB (--max-old-space-size). */
  readonly maxHeapMb: number;
  /** A cell that has not answered a snapshot request in this long is shown as it last was. */
  readonly snapshotTimeoutMs?: number;
  /** A cell still running this long after it was asked to close is killed. */
  readonly closeTimeoutMs?: number;
  /** Each gateway's names (config gateways[].names): the ACME relay between the cells. */
  readonly served?: readonly ServedNames[];
  readonly log: Logger;
}

const CLI = fileURLToPath(new URL('../cli/index.js', import.meta.url));
/** Restart backoff: doubles from the first to the last, back to the first after a minute up. */
const RESTART_FIRST_MS = 500;
const RESTART_MAX_MS = 30_000;
const STABLE_MS = 60_000;

class Cell {
  child: ChildProcess | null = null;
  state: CellStatus['state'] = 'restarting';
  since = new Date();
  restarts = 0;
  lastExit: string | null = null;
  /** The last snapshot it sent: shown (tunnel marked closed) while it is down or slow. */
  last: StatusSnapshot | null = null;
  startedAt = 0;
  failures = 0;
  timer: NodeJS.Timeout | null = null;
  readonly waiting = new Map<number, (s: StatusSnapshot) => void>();

  constructor(readonly gatewayId: string) {}

  status(): CellStatus {
    return {
      gatewayId: this.gatewayId,
      pid: this.child?.pid ?? null,
      state: this.state,
      since: this.since.toISOString(),
      restarts: this.restarts,
      lastExit: this.lastExit,
    };
  }
}

export class CellSupervisor {
  readonly #cells: Cell[];
  #closing = false;
  #nextId = 1;

  // A cell's challenge answers reach the other cells through here, never from cell to cell.
  readonly #relay: ChallengeRelayHub;

  constructor(private readonly options: CellOptions) {
    this.#cells = options.gatewayIds.map((id) => new Cell(id));
    this.#relay = new ChallengeRelayHub(options.served ?? [], (target, source, answers) => {
      const child = this.#cells.find((c) => c.gatewayId === target)?.child;
      if (child?.connected) child.send({ type: 'acme-relay', source, answers } satisfies ToCell, () => {});
    });
  }

  start(): void {
    for (const cell of this.#cells) this.#spawn(cell);
  }

  #spawn(cell: Cell): void {
    const { configFile, maxHeapMb, log } = this.options;
    const child = fork(CLI, ['broker', '--config', configFile, '--gateway', cell.gatewayId], {
      execArgv: [`--max-old-space-size=${maxHeapMb}`],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    cell.child = child;
    cell.state = 'starting';
    cell.since = new Date();
    cell.startedAt = Date.now();
    child.on('message', (m: FromCell) => {
      if (m?.type === 'ready' && cell.state === 'starting') {
        // What a running cell too busy to answer within the timeout is shown as, from the start.
        cell.last = m.snapshot;
        cell.state = 'running';
        cell.since = new Date();
        // A new cell's gateway may have a Redis that kept its inbox, or one that lost it.
        this.#relay.resend(cell.gatewayId);
      }
      if (m?.type === 'acme-published') this.#relay.published(cell.gatewayId, m.answers);
      if (m?.type !== 'snapshot') return;
      cell.last = m.snapshot;
      cell.waiting.get(m.id)?.(m.snapshot);
      cell.waiting.delete(m.id);
    });
    child.on('error', (err) =>
      log.error({ gatewayId: cell.gatewayId, err: err.message }, 'broker cell error'),
    );
    child.once('exit', (code, signal) => {
      cell.child = null;
      cell.lastExit = signal !== null ? signal : `code ${code}`;
      for (const [id, resolve] of cell.waiting) {
        cell.waiting.delete(id);
        if (cell.last) resolve(cell.last);
      }
      if (this.#closing) {
        cell.state = 'stopped';
        cell.since = new Date();
        return;
      }
      // A cell that ran a minute was well; one that keeps dying waits longer each time.
      cell.failures = Date.now() - cell.startedAt >= STABLE_MS ? 0 : cell.failures + 1;
      const delay = Math.min(RESTART_MAX_MS, RESTART_FIRST_MS * 2 ** Math.max(0, cell.failures - 1));
      cell.state = 'restarting';
      cell.since = new Date();
      log.error(
        { gatewayId: cell.gatewayId, exit: cell.lastExit, restartInMs: delay },
        "a gateway's broker cell exited; starting it again",
      );
      cell.timer = setTimeout(() => {
        cell.timer = null;
        if (this.#closing) return;
        cell.restarts += 1;
        this.#spawn(cell);
      }, delay);
    });
    log.info({ gatewayId: cell.gatewayId, pid: child.pid }, 'broker cell started');
  }

  /** Every cell's tunnels and job counts, asked for now; a cell down or slow shows as it last was. */
  async snapshot(): Promise<StatusSnapshot> {
    const timeoutMs = this.options.snapshotTimeoutMs ?? 1000;
    // The cells' states as they were when asked: a cell that comes up while another is answering
    // shows as starting, without jobs, not as running without them.
    const cells = this.#cells.map((c) => c.status());
    const parts = await Promise.all(this.#cells.map((cell) => this.#ask(cell, timeoutMs)));
    const tunnels: TunnelStatus[] = [];
    const jobs: Record<string, StatusSnapshot['jobs'][string]> = {};
    const queues: Record<string, StatusSnapshot['queues'][string]> = {};
    const acme: Record<string, NonNullable<StatusSnapshot['acme']>[string]> = {};
    const work: NonNullable<StatusSnapshot['work']>[number][] = [];
    parts.forEach((part, i) => {
      const cell = this.#cells[i]!;
      if (part === null) return;
      const down = part.running
        ? null
        : `broker cell ${cell.state}${cell.lastExit ? ` (last exit: ${cell.lastExit})` : ''}`;
      for (const t of part.snapshot.tunnels)
        tunnels.push(
          down === null ? t : { ...t, state: 'closed', lastError: down, channels: 0, paused: false },
        );
      Object.assign(jobs, part.snapshot.jobs);
      Object.assign(queues, part.snapshot.queues);
      Object.assign(acme, part.snapshot.acme);
      work.push(...(part.snapshot.work ?? []));
    });
    return { tunnels, jobs, queues, cells, acme, work };
  }

  #ask(cell: Cell, timeoutMs: number): Promise<{ snapshot: StatusSnapshot; running: boolean } | null> {
    // A running cell that did not answer in time is shown as it last was; a cell that is down, with
    // its tunnel closed.
    const stale = () =>
      cell.last === null ? null : { snapshot: cell.last, running: cell.state === 'running' };
    const child = cell.child;
    if (cell.state !== 'running' || child === null || !child.connected) return Promise.resolve(stale());
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        cell.waiting.delete(id);
        resolve(stale());
      }, timeoutMs);
      cell.waiting.set(id, (snapshot) => {
        clearTimeout(timer);
        resolve({ snapshot, running: cell.state === 'running' });
      });
      child.send({ type: 'snapshot', id } satisfies ToCell, (err) => {
        if (err) {
          clearTimeout(timer);
          cell.waiting.delete(id);
          resolve(stale());
        }
      });
    });
  }

  /** Asks every cell to finish what it holds and exit; kills those that do not in time. */
  async close(): Promise<void> {
    this.#closing = true;
    const timeoutMs = this.options.closeTimeoutMs ?? 12_000;
    await Promise.all(
      this.#cells.map(async (cell) => {
        if (cell.timer) clearTimeout(cell.timer);
        const child = cell.child;
        if (child === null) {
          cell.state = 'stopped';
          return;
        }
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        if (child.connected) child.send({ type: 'close' } satisfies ToCell, () => {});
        else child.kill('SIGTERM');
        const timer = setTimeout(() => {
          this.options.log.error(
            { gatewayId: cell.gatewayId },
            'a broker cell did not close in time; killing it',
          );
          child.kill('SIGKILL');
        }, timeoutMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

/**
 * The cell's side: answers its parent's snapshot requests from `snapshot`, and resolves the
 * returned promise when the parent asks it to close (the cell then finishes what it holds and
 * exits, as on SIGTERM). A parent that went away without asking died: the cell exits at once,
 * as it would with its unit, and the jobs it held go to another broker when their locks expire
 * (a cell left running would hold its tunnel's port against the restarted broker's cell).
 */
export function serveParent(
  snapshot: () => Promise<StatusSnapshot>,
  log: Logger,
  relayed: (source: string, answers: unknown) => void = () => {},
): Promise<string> {
  const send = (message: (s: StatusSnapshot) => FromCell) =>
    snapshot().then(
      (s) => process.send?.(message(s)),
      (err: unknown) =>
        log.error({ err: err instanceof Error ? err.message : String(err) }, 'status snapshot failed'),
    );
  void send((s) => ({ type: 'ready', snapshot: s }));
  return new Promise((resolve) => {
    let asked = false;
    process.on('message', (m: ToCell) => {
      if (m?.type === 'acme-relay') relayed(m.source, m.answers);
      else if (m?.type === 'snapshot') void send((s) => ({ type: 'snapshot', id: m.id, snapshot: s }));
      else if (m?.type === 'close') {
        asked = true;
        resolve('asked by its broker');
      }
    });
    process.once('disconnect', () => {
      if (asked) return;
      log.error('its broker went away; exiting now');
      log.flush();
      process.exit(1);
    });
  });
}

/** The cell's side of the ACME relay: its gateway's checked outbox, to the parent's hub. */
export function publishToParent(answers: readonly RelayedAnswer[]): void {
  if (process.connected) process.send?.({ type: 'acme-published', answers } satisfies FromCell);
}
