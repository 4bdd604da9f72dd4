// The gateway's side of its BullMQ queue: adds one job per accepted request. Commands fail
// at once while Redis is unreachable, so a client gets 503 immediately instead of waiting.
import { Queue } from 'bullmq';
import type { RedisConfig } from '../config/schemas/gateway.js';
import { queueName, type Envelope } from '../lib/envelope.js';
import { errors } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { createRedis, type Redis } from '../lib/redis.js';

export class RequestQueue {
  /**
   * Made on the first 'ready': BullMQ initialises its queue once, and on a fail-fast
   * connection that is not yet up that initialisation would fail for good.
   */
  private queue: Queue | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly config: RedisConfig,
    private readonly gatewayId: string,
  ) {
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
    return new RequestQueue(redis, config, gatewayId);
  }

  get ready(): boolean {
    return this.queue !== undefined && this.redis.status === 'ready';
  }

  /** Queues an envelope; the job id is the request id, so a duplicate add is a no-op. */
  async add(envelope: Envelope): Promise<void> {
    const queue = this.queue;
    if (queue === undefined || !this.ready) throw errors.QUEUE_UNAVAILABLE('Queue is not connected');
    try {
      await queue.add(envelope.route, envelope, {
        jobId: envelope.id,
        removeOnComplete: true,
        removeOnFail: true,
        attempts: 1,
      });
    } catch (err) {
      throw errors.QUEUE_UNAVAILABLE('Queue rejected the request', undefined, { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.queue?.close();
    this.redis.disconnect();
  }
}
