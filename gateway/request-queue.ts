// The gateway's side of its BullMQ queue: adds one job per accepted request. Commands fail
// at once while Redis is unreachable, so a client gets 503 immediately instead of waiting.
import { Queue } from 'bullmq';
import type { RedisConfig } from '../config/schemas/gateway.js';
import { queueName, type Envelope } from '../lib/envelope.js';
import { errors } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { createRedis, type Redis } from '../lib/redis.js';

export class RequestQueue {
  private readonly queue: Queue;

  constructor(
    private readonly redis: Redis,
    config: RedisConfig,
    gatewayId: string,
  ) {
    this.queue = new Queue(queueName(gatewayId), {
      connection: redis,
      prefix: config.prefix,
      skipWaitingForReady: true,
      // Each state change writes an event; the gateway never reads them, so keep few.
      streams: { events: { maxLen: 100 } },
    });
    // Connection errors surface through `add`; without a listener they would be unhandled.
    this.queue.on('error', () => {});
  }

  static connect(config: RedisConfig, gatewayId: string, instanceId: string, log: Logger): RequestQueue {
    const redis = createRedis(config, 'fail-fast', `nonstop-gw-${gatewayId}-${instanceId}`, log);
    return new RequestQueue(redis, config, gatewayId);
  }

  get ready(): boolean {
    return this.redis.status === 'ready';
  }

  /** Queues an envelope; the job id is the request id, so a duplicate add is a no-op. */
  async add(envelope: Envelope): Promise<void> {
    if (!this.ready) throw errors.QUEUE_UNAVAILABLE('Queue is not connected');
    try {
      await this.queue.add(envelope.route, envelope, {
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
    await this.queue.close();
    this.redis.disconnect();
  }
}
