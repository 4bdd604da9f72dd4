// What the guard must remember across a restart: every SPA digest it admitted (or refused as from
// the future) and every rotating (client, step) a knock spent, each until it can no longer be
// valid. Without it a restart (Ansible's "Restart guard", a crash and Restart=always) would make a
// packet or knock recorded a minute ago a first use again.
//
// An append-only journal, fsynced before the window it allows opens (the guard flushes it in the
// same queue, ahead of nft), so a crash between the two loses a window, never a spent use. Lines:
//   nonstop-guard-state 1
//   <kind> <untilMs> <key>        kind: spa | early | knock; key: a hex digest or client@step
// A last line without its newline is a write the crash cut short: its window never opened, so it
// is dropped. Anything else unreadable means the guard no longer knows what was spent: it says so
// and starts with a barrier (what was spent then can only be older than the start; see
// GuardStateLoad.lost), keeping the unreadable file beside it as `<stateFile>.unreadable`.
// At start, and once the dead lines outnumber the live ones, the file is rewritten with the live
// lines only (temporary file, fsync, rename, fsync of the directory).
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

const HEADER = 'nonstop-guard-state 1';
const KINDS = new Set(['spa', 'early', 'knock']);
const KEY = /^[A-Za-z0-9._@:-]{1,200}$/;
/** Below this many appended lines the journal is never compacted while running. */
const COMPACT_MIN_LINES = 4096;

export type GuardStateKind = 'spa' | 'early' | 'knock';

export interface GuardStateRecord {
  readonly kind: GuardStateKind;
  readonly key: string;
  /** Epoch ms after which the record can no longer matter. */
  readonly untilMs: number;
}

export interface GuardStateLoad {
  /** The live records, oldest expiry first. */
  readonly records: readonly GuardStateRecord[];
  /** The file was there but unreadable past its last line: why, for the log. */
  readonly lost?: string;
  /** A last line cut short by a crash, dropped. */
  readonly tornTail: boolean;
}

/** Parses a journal's text; `nowMs` drops what has expired. Pure, for tests. */
export function parseGuardState(text: string, nowMs: number): GuardStateLoad {
  const lines = text.split('\n');
  // After the last '\n' comes either nothing or a line the crash cut short.
  const tail = lines.pop()!;
  const tornTail = tail.length > 0;
  if (lines.length === 0) {
    // Nothing complete, not even the header: a crash during the first write, or an empty file.
    return tornTail && !HEADER.startsWith(tail)
      ? { records: [], lost: 'it does not start with the header line', tornTail }
      : { records: [], tornTail };
  }
  if (lines[0] !== HEADER) return { records: [], lost: `line 1 is not "${HEADER}"`, tornTail };
  const live = new Map<string, GuardStateRecord>();
  for (let i = 1; i < lines.length; i++) {
    const [kind, until, key, extra] = lines[i]!.split(' ');
    const untilMs = Number(until);
    if (
      extra !== undefined ||
      kind === undefined ||
      !KINDS.has(kind) ||
      key === undefined ||
      !KEY.test(key) ||
      !Number.isSafeInteger(untilMs)
    )
      return { records: [], lost: `line ${i + 1} is not "<kind> <untilMs> <key>"`, tornTail };
    if (untilMs <= nowMs) continue;
    const id = `${kind} ${key}`;
    const known = live.get(id);
    if (known === undefined || known.untilMs < untilMs)
      live.set(id, { kind: kind as GuardStateKind, key, untilMs });
  }
  const records = [...live.values()].sort((a, b) => a.untilMs - b.untilMs);
  return { records, tornTail };
}

const line = (r: GuardStateRecord) => `${r.kind} ${r.untilMs} ${r.key}\n`;

export class GuardStateFile {
  #fd: FileHandle | undefined;
  #pending: GuardStateRecord[] = [];
  /** Lines in the file now (live or dead), and how many were live at the last rewrite. */
  #lines = 0;
  #liveAtRewrite = 0;

  private constructor(
    readonly path: string,
    /** The live records now, for a rewrite (the guard's replay cache and spent steps). */
    private readonly live: () => readonly GuardStateRecord[],
  ) {}

  /**
   * Reads the journal (a missing file is a first start: nothing spent), rewrites it with the live
   * records and opens it for appending. Throws only when it cannot be read or written at all.
   */
  static async open(
    path: string,
    nowMs: number,
    live: () => readonly GuardStateRecord[],
  ): Promise<{ file: GuardStateFile; load: GuardStateLoad; existed: boolean }> {
    let text: string | undefined;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const load = text === undefined ? { records: [], tornTail: false } : parseGuardState(text, nowMs);
    // Kept for whoever looks into why; the journal starts again from what could be read.
    if (load.lost !== undefined) renameSync(path, `${path}.unreadable`);
    const file = new GuardStateFile(path, live);
    file.#rewriteSync(load.records);
    file.#fd = await open(path, 'a', 0o600);
    return { file, load, existed: text !== undefined };
  }

  /** Queues a record; it is on disk once the next flush resolves. */
  record(r: GuardStateRecord): void {
    this.#pending.push(r);
  }

  get pending(): number {
    return this.#pending.length;
  }

  /** Appends what was recorded and syncs it; rewrites the file when mostly dead lines. */
  async flush(): Promise<void> {
    if (this.#pending.length === 0) return;
    if (this.#fd === undefined) throw new Error(`${this.path} is closed`);
    const batch = this.#pending;
    this.#pending = [];
    try {
      await this.#fd.write(batch.map(line).join(''));
      await this.#fd.datasync();
    } catch (err) {
      // Kept for the next flush: they were not durable, so the caller opened nothing for them.
      this.#pending = batch.concat(this.#pending);
      throw err;
    }
    this.#lines += batch.length;
    if (this.#lines - this.#liveAtRewrite > Math.max(COMPACT_MIN_LINES, 2 * this.#liveAtRewrite))
      await this.#compact();
  }

  async close(): Promise<void> {
    await this.#fd?.close();
    this.#fd = undefined;
  }

  async #compact(): Promise<void> {
    // Whatever is pending is in `live()` already, so the rewrite writes it.
    this.#pending = [];
    await this.#fd?.close();
    this.#fd = undefined;
    this.#rewriteSync(this.live());
    this.#fd = await open(this.path, 'a', 0o600);
  }

  #rewriteSync(records: readonly GuardStateRecord[]): void {
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, HEADER + '\n' + records.map(line).join(''));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    syncDirectory(this.path);
    this.#lines = this.#liveAtRewrite = records.length;
  }
}

/** Makes a rename in the file's directory durable. */
function syncDirectory(path: string): void {
  const fd = openSync(dirname(path), 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
