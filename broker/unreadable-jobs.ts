// Removes jobs whose stored data, options, progress or parent is not JSON (the fields BullMQ
// parses when it reads a job). BullMQ cannot read such a job at all: its worker
// reports a parse error and the job goes round between active and wait for ever, so a forged
// entry would never leave the queue. After a parse error this sweeper looks through the
// queue's waiting and active jobs every interval and removes each unreadable one as soon as
// no worker holds its lock (BullMQ's own `remove` refuses locked jobs). It stops once a sweep
// finds none.
import { Queue } from 'bullmq';
import type { Logger } from '../lib/log.js';
import { clip } from '../lib/log-fields.js';
import type { Redis } from '../lib/redis.js';

export class UnreadableJobSweeper {
  private queue: Queue | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;
  removed = 0;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  /** Called on a worker error; starts sweeping if the error is a parse error. */
  notice(err: Error): void {
    if (!(err instanceof SyntaxError) || this.timer !== undefined) return;
    this.timer = setInterval(() => void this.sweep(), this.intervalMs);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.queue?.close();
  }

  private async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const base = `${this.prefix}:${this.name}`;
      const ids = [
        ...(await this.redis.lrange(`${base}:wait`, 0, -1)),
        ...(await this.redis.lrange(`${base}:active`, 0, -1)),
        ...(await this.redis.zrange(`${base}:prioritized`, '0', '-1')),
      ];
      let unreadable = 0;
      for (const id of new Set(ids)) {
        const fields = await this.redis.hmget(`${base}:${id}`, ...PARSED_FIELDS);
        if (fields.every((f) => f === null || isJson(f))) continue;
        unreadable += 1;
        this.queue ??= new Queue(this.name, { connection: this.redis, prefix: this.prefix });
        if ((await this.queue.remove(id, { removeChildren: false })) === 1) {
          this.removed += 1;
          this.log.warn({ jobId: clip(id) }, 'removed a tampered job that BullMQ cannot read');
        }
      }
      if (unreadable === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    } catch (err) {
      this.log.warn({ err: clip((err as Error).message) }, 'could not sweep unreadable jobs; will retry');
    } finally {
      this.sweeping = false;
    }
  }
}

/** The job hash fields BullMQ's worker runs through JSON.parse. */
const PARSED_FIELDS = ['data', 'opts', 'progress', 'parent'] as const;

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
