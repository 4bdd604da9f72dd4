// The gateway's side of its BullMQ queue: adds one job per accepted request. Commands fail
// at once while Redis is unreachable, so a client gets 503 immediately instead of waiting.
import { Queue } from 'bullmq';
import type { RedisConfig } from '../config/schemas/gateway.js';
import { queueName, type Envelope } from '../lib/envelope.js';
import { errors } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { QueueClock } from '../lib/queue-clock.js';
import { callScriptsByHash } from '../lib/queue-scripts.js';
import { createRedis, type Redis } from '../lib/redis.js';

export type AddOutcome = 'queued' | 'in-flight';

/** How often a vanished job is added again before we just wait for the reply. */
const MAX_READDS = 3;
/** How long a job that is not ours may take to finish before the answer is 409. */
const FINISHING_GRACE_MS = 300;
const FINISHING_POLL_MS = 50;

/** The stored job is the one this process added: same waiting process, same arrival time. */
function isSameRequest(data: string, envelope: Envelope): boolean {
  let stored: unknown;
  try {
    stored = JSON.parse(data) as unknown;
  } catch {
    return false;
  }
  const s = stored as { replyTo?: unknown; receivedAt?: unknown } | null;
  return s !== null && s.replyTo === envelope.replyTo && s.receivedAt === envelope.receivedAt;
}

export class RequestQueue {
  /**
   * Made on the first 'ready': BullMQ initialises its queue once, and on a fail-fast
   * connection that is not yet up that initialisation would fail for good.
   */
  private queue: Queue | undefined;
  /** This Redis's clock, which the envelopes put in it are stamped in (lib/queue-clock.ts). */
  private readonly clock: QueueClock;

  constructor(
    private readonly redis: Redis,
    private readonly config: RedisConfig,
    private readonly gatewayId: string,
    log: Logger,
  ) {
    this.clock = new QueueClock(redis, log);
    // BullMQ's scripts by hash only: the gateway's ACL user has no EVAL (lib/queue-scripts.ts).
    callScriptsByHash(redis);
    if (redis.status === 'ready') this.init();
    else redis.once('ready', () => this.init());
  }

  private init(): void {
    this.queue = new Queue(queueName(this.gatewayId), {
      connection: this.redis,
      prefix: this.config.prefix,
      skipWaitingForReady: true,
      // The version check runs INFO, which the gateway's ACL user may not.
      skipVersionCheck: true,
      // Each state change writes an event; the gateway never reads them, so keep few.
      streams: { events: { maxLen: 100 } },
    });
    // Connection errors surface through `add`; without a listener they would be unhandled.
    this.queue.on('error', () => {});
  }

  static connect(config: RedisConfig, gatewayId: string, instanceId: string, log: Logger): RequestQueue {
    const redis = createRedis(config, 'fail-fast', `nonstop-gw-${gatewayId}-${instanceId}`, log, {
      readyCheck: false,
    });
    return new RequestQueue(redis, config, gatewayId, log);
  }

  /** Connected, and its clock measured (a job is never stamped in a clock not yet compared). */
  get ready(): boolean {
    return this.queue !== undefined && this.redis.status === 'ready' && this.clock.settled;
  }

  /**
   * Queues an envelope; the job id is the request id, and BullMQ ignores an add whose job id
   * exists. For a keyed request that matters: the job already there is an earlier request with
   * the same key (another gateway process, e.g. before a restart), and its reply goes to that
   * process, not to us. So after the add, read back whose job it is: 'in-flight' when it is not
   * ours (nothing was queued for us).
   */
  async add(received: Envelope): Promise<AddOutcome> {
    const queue = this.queue;
    if (queue === undefined || !this.ready) throw errors.QUEUE_UNAVAILABLE('Queue is not connected');
    const envelope = this.clock.stamp(received);
    try {
      if (envelope.idempotent !== true) {
        await this.addJob(queue, envelope);
        return 'queued';
      }
      let readds = 0;
      const until = Date.now() + FINISHING_GRACE_MS;
      for (;;) {
        await this.addJob(queue, envelope);
        const [data] = await this.redis.hmget(queue.toKey(envelope.id), 'data');
        if (data === null || data === undefined) {
          // Gone already: ours was answered at once (its reply is on its way; adding again only
          // makes the core replay it), or the earlier job finished between its existence making
          // our add a no-op and this read. Add again so that somebody answers us.
          if (++readds >= MAX_READDS) return 'queued';
          continue;
        }
        if (isSameRequest(data, envelope)) return 'queued';
        // A job whose reply has just been sent lingers until BullMQ removes it: a client that
        // retries right after its answer would be told "in flight". Look again for a moment.
        if (Date.now() >= until) return 'in-flight';
        await new Promise((r) => setTimeout(r, FINISHING_POLL_MS));
      }
    } catch (err) {
      throw errors.QUEUE_UNAVAILABLE('Queue rejected the request', undefined, { cause: err });
    }
  }

  private async addJob(queue: Queue, envelope: Envelope): Promise<void> {
    await queue.add(envelope.route, envelope, {
      jobId: envelope.id,
      removeOnComplete: true,
      removeOnFail: true,
      attempts: 1,
    });
  }

  async close(): Promise<void> {
    this.clock.close();
    await this.queue?.close();
    this.redis.disconnect();
  }
}
