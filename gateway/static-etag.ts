// Strong ETags from a file's content, computed once per file version (device, inode, size, mtime)
// and cached: a file has the same tag on every gateway, however and whenever it was copied there.
// Files past the hashing limit get a tag from size and mtime instead (no read before the answer).
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { etagOf } from './static-http.js';

const MAX_HASHED_BYTES = 16 * 1024 * 1024;
const MAX_ENTRIES = 10_000;

export class EtagCache {
  private readonly entries = new Map<string, { readonly version: string; readonly tag: string }>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly maxEntries = MAX_ENTRIES,
    private readonly maxHashedBytes = MAX_HASHED_BYTES,
  ) {}

  /** The tag of the file at `path` as `st` describes it; `suffix` tells variants apart. */
  async etag(path: string, st: Stats, suffix = ''): Promise<string> {
    if (st.size > this.maxHashedBytes) return etagOf(st.size, st.mtimeMs, suffix);
    const version = versionOf(st);
    const hit = this.entries.get(path);
    if (hit !== undefined && hit.version === version) return `"${hit.tag}${suffix}"`;
    // Concurrent first requests for one file share one read.
    const key = `${path}\0${version}`;
    let digest = this.pending.get(key);
    if (digest === undefined) {
      digest = this.hash(path, version).finally(() => this.pending.delete(key));
      this.pending.set(key, digest);
    }
    const tag = await digest;
    return tag === '' ? etagOf(st.size, st.mtimeMs, suffix) : `"${tag}${suffix}"`;
  }

  /** The content's digest, cached; '' when the file changed while it was read (not cached). */
  private async hash(path: string, version: string): Promise<string> {
    const hash = createHash('sha256');
    try {
      for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    } catch {
      // Gone or unreadable now: the open that follows decides what the client gets.
      return '';
    }
    const after = await stat(path).catch(() => undefined);
    if (after === undefined || versionOf(after) !== version) return '';
    const tag = hash.digest('base64url').slice(0, 22);
    if (this.entries.size >= this.maxEntries) {
      // Oldest entry first: a Map iterates in insertion order.
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.delete(path);
    this.entries.set(path, { version, tag });
    return tag;
  }
}

/** What identifies one version of a file: a change of any part is a new file. */
export function versionOf(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}
