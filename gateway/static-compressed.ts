// Compressed variants of static files, made once per file version and kept in memory (bounded in
// bytes, least recently used out first), so that a file is not compressed again for every client.
// Concurrent first requests for one variant share one compression; only a few run at a time.
import type { Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { CodingLevels } from '../config/schemas/gateway.js';
import { compress, type Coding } from './compression.js';
import { versionOf } from './static-etag.js';

/** Compressions under way at once; past them a request gets the file uncompressed. */
const MAX_PENDING = 4;

export class CompressedVariants {
  /** By `path \0 coding`: the version it was made from and the bytes. */
  private readonly entries = new Map<string, { readonly version: string; readonly bytes: Buffer }>();
  private readonly pending = new Map<string, Promise<Buffer | undefined>>();
  private size = 0;

  /** The largest file compressed into the cache (cacheBytes/8); a bigger one is compressed as it is sent. */
  readonly maxFileBytes: number;
  private readonly maxPending: number;

  constructor(
    private readonly maxBytes: number,
    private readonly levels: CodingLevels,
    options: { readonly maxFileBytes?: number; readonly maxPending?: number } = {},
  ) {
    this.maxFileBytes = options.maxFileBytes ?? Math.floor(maxBytes / 8);
    this.maxPending = options.maxPending ?? MAX_PENDING;
  }

  /** Bytes held now (for tests and metrics). */
  get heldBytes(): number {
    return this.size;
  }

  /**
   * The file at `path`, as `st` describes it, in `coding`; undefined when it changed while it was
   * read or too many compressions are under way (the caller then sends it uncompressed).
   */
  async get(path: string, st: Stats, coding: Coding): Promise<Buffer | undefined> {
    const key = `${path}\0${coding}`;
    const version = versionOf(st);
    const hit = this.entries.get(key);
    if (hit !== undefined && hit.version === version) {
      // Most recently used last: a Map iterates in insertion order.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.bytes;
    }
    const job = `${key}\0${version}`;
    let made = this.pending.get(job);
    if (made === undefined) {
      if (this.pending.size >= this.maxPending) return undefined;
      made = this.make(path, version, st.size, coding).finally(() => this.pending.delete(job));
      this.pending.set(job, made);
    }
    const bytes = await made;
    if (bytes !== undefined) this.store(key, version, bytes);
    return bytes;
  }

  private async make(
    path: string,
    version: string,
    size: number,
    coding: Coding,
  ): Promise<Buffer | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch {
      // Gone or unreadable now: the caller's open decides what the client gets.
      return undefined;
    }
    if (bytes.length !== size) return undefined;
    const out = await compress(bytes, coding, this.levels);
    const after = await stat(path).catch(() => undefined);
    return after !== undefined && versionOf(after) === version ? out : undefined;
  }

  private store(key: string, version: string, bytes: Buffer): void {
    const old = this.entries.get(key);
    if (old !== undefined) {
      if (old.version === version) return;
      this.entries.delete(key);
      this.size -= old.bytes.length;
    }
    if (bytes.length > this.maxFileBytes) return;
    for (const [k, e] of this.entries) {
      if (this.size + bytes.length <= this.maxBytes) break;
      this.entries.delete(k);
      this.size -= e.bytes.length;
    }
    this.entries.set(key, { version, bytes });
    this.size += bytes.length;
  }
}
