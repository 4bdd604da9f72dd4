// A broker's part in ACME challenges answered by any gateway of a name (lib/acme-relay.ts has
// the keys and the checks): for each gateway, the outbox reader polls what that gateway
// published in its own Redis and reports the answers that pass, and the inbox writer keeps that
// gateway's inbox (in the same Redis) holding what the hub relayed to it, each entry gone when
// its answer expires. Which gateway gets whose answers is the hub's (broker/acme-relay-hub.ts).
import {
  challengeInboxKey,
  challengeOutboxKey,
  checkOutbox,
  MAX_OUTBOX_BYTES,
  type OutboxCheck,
  type RelayedAnswer,
} from '../lib/acme-relay.js';
import type { Logger } from '../lib/log.js';
import { clip } from '../lib/log-fields.js';
import type { Redis } from '../lib/redis.js';

/** How often a broker reads each gateway's outbox (a GETRANGE of at most 32 KiB). */
export const OUTBOX_POLL_MS = 500;

export interface ChallengeRelayCounts {
  /** Answers that passed and went to the hub (counted once each time an outbox changes). */
  relayed: number;
  /** Answers refused: malformed, too many, too long, or for a name the gateway does not serve. */
  refused: number;
}

export interface OutboxOptions {
  readonly redis: Redis;
  readonly prefix: string;
  readonly gatewayId: string;
  /** The names the broker's config says this gateway serves. */
  readonly names: readonly string[];
  /** Called with the whole checked outbox whenever it changes (an empty array: withdrawn). */
  readonly onChange: (answers: readonly RelayedAnswer[]) => void;
  readonly log: Logger;
  readonly pollMs?: number;
  readonly now?: () => number;
}

/** Reads one gateway's outbox, bounded: never more than MAX_OUTBOX_BYTES + 1 bytes of it. */
export class ChallengeOutbox {
  readonly counts: ChallengeRelayCounts = { relayed: 0, refused: 0 };
  readonly #key: string;
  readonly #names: ReadonlySet<string>;
  readonly #now: () => number;
  #lastText = '';
  /** Null until the first read: a restarted cell reports its outbox, empty or not, at once. */
  #lastSet: string | null = null;
  #timer: NodeJS.Timeout | null = null;
  #failing = false;
  #closed = false;

  constructor(private readonly options: OutboxOptions) {
    this.#key = challengeOutboxKey(options.prefix, options.gatewayId);
    this.#names = new Set(options.names.map((n) => n.toLowerCase()));
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    const tick = () => {
      void this.poll().finally(() => {
        if (!this.#closed) this.#timer = setTimeout(tick, this.options.pollMs ?? OUTBOX_POLL_MS);
      });
    };
    tick();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  /** One read; resolves once any change is reported. */
  async poll(): Promise<void> {
    let text: string;
    let check: OutboxCheck;
    try {
      text = await this.options.redis.getrange(this.#key, 0, MAX_OUTBOX_BYTES);
      this.#failing = false;
      check =
        text === '' ? { answers: [], refused: [], expired: 0 } : checkOutbox(text, this.#names, this.#now());
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (!message.startsWith('WRONGTYPE')) {
        // Unreachable: what was relayed stands until it expires (the inboxes prune it).
        if (!this.#failing) this.options.log.warn({ err: clip(message) }, 'reading the ACME outbox failed');
        this.#failing = true;
        return;
      }
      // The gateway made its outbox something else than a string: nothing in it is relayed.
      text = '\0WRONGTYPE';
      check = { answers: [], refused: [{ reason: 'the outbox is not a string' }], expired: 0 };
    }
    const changedText = text !== this.#lastText;
    this.#lastText = text;
    if (changedText && check.refused.length > 0) {
      this.counts.refused += check.refused.length;
      this.options.log.warn(
        {
          refused: check.refused.length,
          kept: check.answers.length,
          // The first few, by reason and name: never a key authorization.
          problems: check.refused.slice(0, 3).map((r) => ({
            reason: r.reason,
            ...(r.type === undefined ? {} : { type: clip(r.type) }),
            ...(r.identifier === undefined ? {} : { identifier: clip(r.identifier) }),
          })),
        },
        'refused ACME challenge answers the gateway published',
      );
    }
    const set = JSON.stringify(check.answers);
    if (set === this.#lastSet) return;
    const first = this.#lastSet === null;
    this.#lastSet = set;
    if (changedText) this.counts.relayed += check.answers.length;
    if (!first || check.answers.length > 0)
      this.options.log.info(
        {
          answers: check.answers.map((a) => ({
            type: a.type,
            identifier: a.identifier,
            expiresAt: a.expiresAt,
          })),
        },
        "relaying the gateway's ACME challenge answers",
      );
    this.options.onChange(check.answers);
  }
}

/**
 * One gateway's inbox in its Redis on this broker, written by this broker only: a hash field
 * per source gateway (HDEL when it has nothing left), the key's expiry at the last answer's
 * (PEXPIREAT … GT, so that no broker cuts another's short), and a prune of expired answers
 * every `pollMs` so that no entry outlives its answer by more than that.
 */
export class ChallengeInbox {
  readonly #key: string;
  readonly #now: () => number;
  /** What this broker last wrote, by source. */
  readonly #held = new Map<string, readonly RelayedAnswer[]>();
  #timer: NodeJS.Timeout | null = null;
  #queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: Redis,
    prefix: string,
    gatewayId: string,
    private readonly log: Logger,
    options: { pollMs?: number; now?: () => number } = {},
  ) {
    this.#key = challengeInboxKey(prefix, gatewayId);
    this.#now = options.now ?? Date.now;
    this.#timer = setInterval(() => this.#prune(), options.pollMs ?? OUTBOX_POLL_MS);
    this.#timer.unref();
  }

  /** Replaces what `source` relayed here; resolves once written (or the write failed, logged). */
  relay(source: string, answers: readonly RelayedAnswer[]): Promise<void> {
    return this.#serial(() => this.#write(source, answers));
  }

  /** Every source's answers again (the Redis came back empty after a restart). */
  rewrite(): Promise<void> {
    return this.#serial(async () => {
      for (const [source, answers] of [...this.#held]) await this.#write(source, answers);
    });
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  #serial(work: () => Promise<void>): Promise<void> {
    this.#queue = this.#queue.then(work, work);
    return this.#queue;
  }

  #prune(): void {
    const now = this.#now();
    for (const [source, answers] of this.#held)
      if (answers.some((a) => a.expiresAt <= now)) void this.relay(source, answers);
  }

  async #write(source: string, answers: readonly RelayedAnswer[]): Promise<void> {
    const now = this.#now();
    const live = answers.filter((a) => a.expiresAt > now);
    if (live.length === 0) this.#held.delete(source);
    else this.#held.set(source, live);
    try {
      if (live.length === 0) {
        await this.redis.hdel(this.#key, source);
        return;
      }
      const last = Math.max(...live.map((a) => a.expiresAt));
      // NX gives a new key its expiry, GT moves a later one out; neither shortens another's.
      const results = await this.redis
        .multi()
        .hset(this.#key, source, JSON.stringify(live))
        .pexpireat(this.#key, last, 'NX')
        .pexpireat(this.#key, last, 'GT')
        .exec();
      const failed = results?.find(([e]) => e !== null)?.[0];
      if (failed) throw failed;
    } catch (err) {
      this.log.warn(
        { source, err: err instanceof Error ? err.message : String(err) },
        'writing relayed ACME challenge answers failed',
      );
    }
  }
}
