// Collects replies for one gateway process. Brokers add each reply to this process's own
// stream; a single blocking connection reads them in batches (XREAD) and wakes the waiting
// request. This avoids `job.waitUntilFinished`, whose event stream misses replies under load.
// With several Redis endpoints (several brokers' Redis) one such loop reads each: a reply
// comes back on the Redis its job was queued on.
//
// Reading does not remove: every read starts at the stream's beginning, and the entries of a
// batch are trimmed (XTRIM MINID) only in front of the next read, once they were delivered. A
// link that drops while a batch is on its way (a tunnel cut under traffic) loses nothing: the
// next read, on the new connection, returns the batch again. A reply delivered twice finds no
// waiter the second time.
import { parseReply, REPLY_BATCH, REPLY_FIELD, type Reply } from '../lib/envelope.js';
import type { Logger } from '../lib/log.js';
import type { Redis } from '../lib/redis.js';

const BLOCK_SECONDS = 1;

interface Waiter {
  resolve(reply: Reply | null): void;
  timer: NodeJS.Timeout;
}

export class ReplyWaiter {
  private readonly waiters = new Map<string, Waiter>();
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly connections: readonly Redis[];
  private readonly wakes = new Set<() => void>();

  constructor(
    redis: Redis | readonly Redis[],
    readonly key: string,
    private readonly log: Logger,
  ) {
    this.connections = Array.isArray(redis) ? [...(redis as readonly Redis[])] : [redis as Redis];
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = this.connections.map((redis) => this.run(redis));
  }

  /**
   * Registers interest in a request's reply. Call before the request is queued, so a fast
   * reply cannot arrive unclaimed. Resolves with the reply, or null at the deadline.
   */
  wait(id: string, timeoutMs: number): Promise<Reply | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        resolve(null);
      }, timeoutMs);
      this.waiters.set(id, { resolve, timer });
    });
  }

  /** Stops waiting for a request (it was never queued). */
  cancel(id: string): void {
    const waiter = this.waiters.get(id);
    if (waiter === undefined) return;
    clearTimeout(waiter.timer);
    this.waiters.delete(id);
    waiter.resolve(null);
  }

  /** This process already waits for a reply to `id` (a keyed request in flight here). */
  isWaiting(id: string): boolean {
    return this.waiters.has(id);
  }

  get pending(): number {
    return this.waiters.size;
  }

  /** At least one endpoint's reply stream is readable. */
  get connected(): boolean {
    return this.connections.some((r) => r.status === 'ready');
  }

  async close(): Promise<void> {
    this.running = false;
    for (const wake of [...this.wakes]) wake();
    for (const redis of this.connections) redis.disconnect();
    // A command caught mid-reconnect is never rejected by ioredis; do not wait on it forever.
    await Promise.race([
      Promise.all(this.loops),
      new Promise((r) => setTimeout(r, BLOCK_SECONDS * 1000).unref()),
    ]);
    for (const id of [...this.waiters.keys()]) this.cancel(id);
  }

  /** Resolves when the connection is ready again, on close, or after a second. */
  private untilConnected(redis: Redis): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        redis.off('ready', done);
        this.wakes.delete(done);
        resolve();
      };
      const timer = setTimeout(done, 1000);
      redis.once('ready', done);
      this.wakes.add(done);
    });
  }

  private async run(redis: Redis): Promise<void> {
    // The first entry id not yet trimmed: the batch read last was delivered.
    let trimTo: string | undefined;
    while (this.running) {
      if (redis.status !== 'ready') {
        await this.untilConnected(redis);
        continue;
      }
      let result: unknown;
      try {
        // Sent back to back on one connection: Redis runs the trim before the read. A trim lost
        // with the link is sent again after the next read returns the same batch.
        if (trimTo !== undefined) redis.xtrim(this.key, 'MINID', trimTo).catch(() => {});
        // ioredis's xread, not call: it reads the answer as [[key, entries]] also over RESP3.
        result = await redis.xread(
          'COUNT',
          REPLY_BATCH,
          'BLOCK',
          BLOCK_SECONDS * 1000,
          'STREAMS',
          this.key,
          '0-0',
        );
      } catch (err) {
        if (!this.running) return;
        this.log.warn({ err: (err as Error).message }, 'reply stream unreachable; retrying');
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      trimTo = undefined;
      const entries = streamEntries(result);
      for (const [, fields] of entries) this.deliver(fieldValue(fields, REPLY_FIELD));
      const last = entries.at(-1)?.[0];
      if (last !== undefined) trimTo = nextStreamId(last);
    }
  }

  private deliver(raw: unknown): void {
    let data: unknown;
    try {
      data = typeof raw === 'string' ? (JSON.parse(raw) as unknown) : undefined;
    } catch {
      data = undefined;
    }
    const parsed = parseReply(data);
    if (!parsed.ok) {
      this.log.warn({ reason: parsed.error }, 'discarded a malformed reply');
      return;
    }
    const waiter = this.waiters.get(parsed.value.id);
    if (waiter === undefined) return; // Already answered (deadline) or a duplicate delivery.
    clearTimeout(waiter.timer);
    this.waiters.delete(parsed.value.id);
    waiter.resolve(parsed.value);
  }
}

/** The entries of an XREAD answer for one stream: `[[key, [[id, [field, value, …]], …]]]`. */
function streamEntries(result: unknown): [string, unknown][] {
  if (!Array.isArray(result)) return [];
  const stream: unknown = result[0];
  if (!Array.isArray(stream) || !Array.isArray(stream[1])) return [];
  const entries: [string, unknown][] = [];
  for (const entry of stream[1] as unknown[])
    if (Array.isArray(entry) && typeof entry[0] === 'string') entries.push([entry[0], entry[1]]);
  return entries;
}

function fieldValue(fields: unknown, name: string): unknown {
  if (!Array.isArray(fields)) return undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/** The smallest stream id after `id` (`ms-seq`): XTRIM MINID keeps ids from it on. */
export function nextStreamId(id: string): string {
  const [ms = '0', seq = '0'] = id.split('-');
  return `${ms}-${(BigInt(seq) + 1n).toString()}`;
}
