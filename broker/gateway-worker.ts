// Works one gateway's queue: each job is an envelope to check and carry to the core; the
// reply goes onto the waiting gateway process's reply stream. A job that is not a valid
// envelope for this gateway is logged and dropped; the worker keeps running.
import { Worker, type Job } from 'bullmq';
import { gatewayRedis, type BrokerConfig } from '../config/schemas/broker.js';
import {
  idMatchesKind,
  parseEnvelope,
  queueName,
  MAX_REPLY_BYTES,
  REPLY_FIELD,
  replyKey,
  type Envelope,
  type Reply,
} from '../lib/envelope.js';
import type { RoutesConfig } from '../config/schemas/routes.js';
import { errors, isNonstopError, type NonstopError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { clip } from '../lib/log-fields.js';
import { QueueClock } from '../lib/queue-clock.js';
import { createRedis, type Redis } from '../lib/redis.js';
import type { CoreClient } from './core-client.js';
import { EnvelopeBounds, maxJobDataBytes } from './envelope-bounds.js';
import { JobScreen, screenedBackend } from './job-screen.js';
import type { CoreCallMetrics } from './metrics.js';
import { UnreadableJobSweeper } from './unreadable-jobs.js';
import type { RequestValidator } from './validator.js';

/** A reply stream nobody reads (its gateway process died) disappears after this. */
const REPLY_TTL_MS = 60_000;
/** How often the queue's depth is read for the status endpoint (four O(1) commands). */
const DEPTH_SAMPLE_MS = 2000;

/** A gateway's queue as last sampled: jobs waiting to be taken, being worked, delayed. */
export interface QueueDepth {
  readonly waiting: number;
  readonly active: number;
  readonly delayed: number;
}

export interface GatewayWorkerDeps {
  readonly config: BrokerConfig;
  readonly gatewayId: string;
  readonly routes: RoutesConfig;
  readonly validator: RequestValidator;
  readonly core: CoreClient;
  /** The reply connection, to this gateway's own Redis. */
  readonly replies: Redis;
  readonly log: Logger;
  /** Each request handed to the core is timed here (broker/metrics.ts). */
  readonly metrics?: CoreCallMetrics;
}

export type JobOutcome = 'answered' | 'invalid' | 'tampered' | 'expired';

export class GatewayWorker {
  private readonly worker: Worker;
  private readonly connection: Redis;
  private readonly unreadable: UnreadableJobSweeper;
  private readonly screen: JobScreen;
  private readonly bounds: EnvelopeBounds;
  /** The gateway stamped its envelopes in this Redis's time; they are judged in it. */
  private readonly clock: QueueClock;
  private readonly log: Logger;
  readonly counts: Record<JobOutcome, number> = { answered: 0, invalid: 0, tampered: 0, expired: 0 };
  /** As last sampled; zero until the first sample. */
  depth: QueueDepth = { waiting: 0, active: 0, delayed: 0 };
  private readonly depthTimer: NodeJS.Timeout;

  /** Jobs removed because their stored data was not even JSON. */
  get unreadableRemoved(): number {
    return this.unreadable.removed;
  }

  constructor(private readonly deps: GatewayWorkerDeps) {
    const { config, gatewayId } = deps;
    this.log = deps.log.child({ gatewayId });
    this.connection = createRedis(
      gatewayRedis(config, gatewayId),
      'blocking',
      `nonstop-broker-${config.id}-${gatewayId}`,
      this.log,
    );
    const link = config.gateways.find((g) => g.id === gatewayId);
    if (link === undefined) throw new Error(`gateway "${gatewayId}" is not in the broker's config`);
    this.bounds = new EnvelopeBounds(deps.routes, link);
    this.clock = new QueueClock(deps.replies, this.log);
    // Every job BullMQ fetches is screened first: its options replaced, the fields BullMQ would
    // act on removed, oversized values refused unread (broker/job-screen.ts).
    this.screen = new JobScreen(this.connection, `${config.redis.prefix}:${queueName(gatewayId)}`, {
      maxDataBytes: maxJobDataBytes(link),
    });
    this.worker = new Worker(
      queueName(gatewayId),
      (job: Job) => this.process(job),
      {
        connection: this.connection,
        prefix: config.redis.prefix,
        concurrency: config.concurrency,
        lockDuration: config.lockDurationMs,
        stalledInterval: config.stalledIntervalMs,
        maxStalledCount: 1,
        // Nothing about a request stays behind (the screen also gives each job these options).
        removeOnComplete: { count: 0 },
        removeOnFail: { count: 0 },
      },
      screenedBackend(this.screen),
    );
    this.unreadable = new UnreadableJobSweeper(
      this.connection,
      config.redis.prefix,
      queueName(gatewayId),
      config.stalledIntervalMs,
      this.log,
    );
    this.worker.on('error', (err) => {
      // BullMQ's messages may quote what a gateway wrote (a job id, a parse error's excerpt).
      this.log.warn({ err: clip(err.message) }, 'worker error');
      this.unreadable.notice(err);
    });
    const keys = `${config.redis.prefix}:${queueName(gatewayId)}`;
    const sample = () => {
      deps.replies
        .multi()
        .llen(`${keys}:wait`)
        .zcard(`${keys}:prioritized`)
        .llen(`${keys}:active`)
        .zcard(`${keys}:delayed`)
        .exec()
        .then((results) => {
          const n = (results ?? []).map(([err, v]) => (err === null && typeof v === 'number' ? v : 0));
          this.depth = { waiting: n[0]! + n[1]!, active: n[2]!, delayed: n[3]! };
        })
        // Redis down: the last sample stands (the tunnel's state says why).
        .catch(() => {});
    };
    sample();
    this.depthTimer = setInterval(sample, DEPTH_SAMPLE_MS).unref();
  }

  async close(): Promise<void> {
    clearInterval(this.depthTimer);
    this.clock.close();
    await this.worker.close();
    await this.unreadable.close();
    // BullMQ leaves a connection it was given open.
    this.connection.disconnect();
  }

  private async process(job: Job): Promise<JobOutcome> {
    // A job's own options override the worker's when BullMQ finishes it; the screen has set
    // them already, and this keeps a forged job from staying in Redis should it ever not have.
    job.opts.removeOnComplete = true;
    job.opts.removeOnFail = true;
    const outcome = await this.handle(job);
    this.counts[outcome] += 1;
    return outcome;
  }

  /** The envelope in a job, or why the job is not a request this gateway could have queued. */
  private tampering(job: Job): { reason: string } | { envelope: Envelope } {
    const refusal = this.screen.takeRefusal(job.id ?? '');
    if (refusal !== undefined) return { reason: refusal };
    const parsed = parseEnvelope(job.data as unknown);
    if (!parsed.ok) return { reason: parsed.error };
    const envelope = parsed.value;
    if (envelope.gatewayId !== this.deps.gatewayId || envelope.id !== job.id) {
      return { reason: 'gateway id or job id does not match the queue' };
    }
    if (!idMatchesKind(envelope)) {
      return { reason: 'the idempotent flag does not match the request id (keyed ids are UUID version 8)' };
    }
    const outOfBounds = this.bounds.check(envelope, this.clock.now());
    return outOfBounds === undefined ? { envelope } : { reason: outOfBounds };
  }

  private async handle(job: Job): Promise<JobOutcome> {
    // The first jobs after a start are judged in the queue's clock too, not in ours.
    if (!this.clock.settled) await this.clock.measure();
    const checked = this.tampering(job);
    if ('reason' in checked) {
      this.log.warn(
        { jobId: clip(job.id), jobName: clip(job.name), reason: clip(checked.reason) },
        'rejected a tampered job',
      );
      return 'tampered';
    }
    const envelope = checked.envelope;
    const log = this.log.child({ requestId: envelope.id, route: clip(envelope.route) });
    if (this.clock.now() >= envelope.deadline) {
      log.warn('job expired before it was taken; the gateway has answered 504');
      return 'expired';
    }

    const check = this.deps.validator.validate(envelope);
    if (!check.ok) {
      const err = errors.VALIDATION_FAILED();
      log.info({ status: 400, problems: check.problems.length }, 'invalid request refused');
      await this.reply(envelope, {
        id: envelope.id,
        status: 400,
        headers: {},
        body: { error: { code: err.code, message: err.message, details: check.problems } },
      });
      return 'invalid';
    }

    const started = Date.now();
    const timer = performance.now();
    let reply: Reply;
    try {
      const answer = await this.deps.core.execute(envelope, this.clock.toLocal(envelope.deadline));
      reply = {
        id: envelope.id,
        status: answer.status,
        headers: answer.headers,
        body: answer.body,
        ...(answer.content === undefined ? {} : { content: answer.content }),
        ...(answer.cookies === undefined ? {} : { cookies: answer.cookies }),
        ...(answer.replayed ? { replayed: true } : {}),
      };
      this.deps.metrics?.observe((performance.now() - timer) / 1000);
      log.info(
        { status: answer.status, replayed: answer.replayed, durationMs: Date.now() - started },
        'executed',
      );
    } catch (err) {
      const e: NonstopError = isNonstopError(err) ? err : errors.INTERNAL();
      this.deps.metrics?.observe((performance.now() - timer) / 1000, e.code);
      log.warn(
        { code: e.code, err: e.message, ms: Date.now() - started },
        'core did not complete the request',
      );
      reply = {
        id: envelope.id,
        status: e.status ?? 500,
        headers: {},
        body: { error: { code: e.code, message: e.message } },
      };
    }
    await this.reply(envelope, reply);
    return 'answered';
  }

  private async reply(envelope: Envelope, reply: Reply): Promise<void> {
    const key = replyKey(this.deps.config.redis.prefix, envelope.gatewayId, envelope.replyTo);
    let text = JSON.stringify(reply);
    if (Buffer.byteLength(text) > MAX_REPLY_BYTES) {
      // The gateway's reply read is sized for MAX_REPLY_BYTES (lib/envelope.ts).
      const err = errors.ANSWER_TOO_LARGE();
      this.log.warn(
        { requestId: envelope.id, bytes: Buffer.byteLength(text) },
        'reply too large; answered 502',
      );
      text = JSON.stringify({
        id: envelope.id,
        status: 502,
        headers: {},
        body: { error: { code: err.code, message: err.message } },
      } satisfies Reply);
    }
    await this.deps.replies.multi().xadd(key, '*', REPLY_FIELD, text).pexpire(key, REPLY_TTL_MS).exec();
  }
}
