// Collects replies for one gateway process. Brokers push each reply onto this process's own
// list; a single blocking connection pops them in batches (BLMPOP) and wakes the waiting
// request. This avoids `job.waitUntilFinished`, whose event stream misses replies under load.
// With several Redis endpoints (several brokers' Redis) one such loop reads each: a reply
// comes back on the Redis its job was queued on.
import { parseReply, REPLY_BATCH, type Reply } from '../lib/envelope.js';
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

  /** At least one endpoint's reply list is readable. */
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
    while (this.running) {
      if (redis.status !== 'ready') {
        await this.untilConnected(redis);
        continue;
      }
      let result: unknown;
      try {
        result = await redis.call('BLMPOP', BLOCK_SECONDS, 1, this.key, 'LEFT', 'COUNT', REPLY_BATCH);
      } catch (err) {
        if (!this.running) return;
        this.log.warn({ err: (err as Error).message }, 'reply list unreachable; retrying');
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (!Array.isArray(result)) continue;
      const items: unknown = result[1];
      if (!Array.isArray(items)) continue;
      for (const item of items) this.deliver(item);
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
