// The gateway's queue over several Redis endpoints (one per broker tunnel): jobs go to the
// endpoint in use while it is up; when an add fails or it is down, the next one that is up
// takes over and stays in use. Replies are read from every endpoint (ReplyWaiter).
import type { Envelope } from '../lib/envelope.js';
import { errors } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { AddOutcome, RequestQueue } from './request-queue.js';

/** What the request handler needs of a queue. */
export interface JobQueue {
  readonly ready: boolean;
  /** 'in-flight': a keyed request whose earlier job is still queued; nothing was added. */
  add(envelope: Envelope): Promise<AddOutcome>;
  close(): Promise<void>;
}

export class QueueSet implements JobQueue {
  private current = 0;

  constructor(
    private readonly queues: readonly RequestQueue[],
    private readonly names: readonly string[],
    private readonly log: Logger,
  ) {
    if (queues.length === 0) throw errors.CONFIG_INVALID('gateway: redis needs at least one endpoint');
  }

  get ready(): boolean {
    return this.queues.some((q) => q.ready);
  }

  /** Index of the endpoint now in use. */
  get active(): number {
    return this.current;
  }

  async add(envelope: Envelope): Promise<AddOutcome> {
    let failure: Error | undefined;
    // Where this add started: concurrent adds move `current` while this one awaits, and counting
    // from the moved one would try the failed endpoint again and skip the one that is up.
    const first = this.current;
    for (let i = 0; i < this.queues.length; i++) {
      const index = (first + i) % this.queues.length;
      const queue = this.queues[index]!;
      if (!queue.ready) continue;
      let outcome: AddOutcome;
      try {
        outcome = await queue.add(envelope);
      } catch (err) {
        failure = err as Error;
        continue;
      }
      if (index !== this.current) {
        this.log.warn(
          { from: this.names[this.current], to: this.names[index] },
          'queue endpoint down; moved to another',
        );
        this.current = index;
      }
      return outcome;
    }
    throw failure ?? errors.QUEUE_UNAVAILABLE('Queue is not connected');
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
