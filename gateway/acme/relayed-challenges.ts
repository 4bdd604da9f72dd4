// The challenge store of a gateway that shares its name with others: what it orders it answers
// itself and publishes to its outbox in each broker's Redis (every broker, since any may be the
// one that relays); what the brokers relayed from the other gateways of its names it reads from
// its inbox there. Lookups are on the request path and anyone can send random tokens, so they
// never touch Redis: a poll of each inbox (one HGETALL of a small hash, bounded by the brokers)
// keeps a map in memory, and a lookup is a Map.get and a clock check. An answer relayed by any
// one broker is answered, so one broker up is enough.
import { redisEndpoints, type GatewayRedisConfig } from '../../config/schemas/gateway.js';
import {
  challengeInboxKey,
  challengeOutboxKey,
  CLOCK_SLACK_MS,
  MAX_ANSWER_LIFETIME_MS,
  parseInboxField,
  type RelayedAnswer,
} from '../../lib/acme-relay.js';
import type { Logger } from '../../lib/log.js';
import { createRedis, type Redis } from '../../lib/redis.js';
import { LocalChallengeStore, type ChallengeAnswer, type ChallengeStore } from './challenges.js';

/** How often the inboxes are read. */
export const INBOX_POLL_MS = 500;
/** How long `publish` waits to see its answer relayed back by a broker. */
export const CONFIRM_TIMEOUT_MS = 10_000;
/**
 * How long `publish` waits after that, for the other gateways of the name to have read their
 * inboxes (every INBOX_POLL_MS, plus the read itself; the broker writes theirs about when it
 * writes this one's): a CA validates as soon as it is told to, at whichever gateway it resolves.
 */
export const SETTLE_MS = 2 * INBOX_POLL_MS;

export interface RelayedChallengeOptions {
  /** A connection to each broker's Redis of this gateway (its redis.endpoints). */
  readonly redis: readonly Redis[];
  readonly prefix: string;
  readonly gatewayId: string;
  readonly log: Logger;
  readonly pollMs?: number;
  readonly confirmTimeoutMs?: number;
  readonly settleMs?: number;
  readonly now?: () => number;
}

interface View {
  readonly http: ReadonlyMap<string, RelayedAnswer>;
  readonly tlsAlpn: ReadonlyMap<string, RelayedAnswer>;
}

const EMPTY: View = { http: new Map(), tlsAlpn: new Map() };

/**
 * Several gateways may have a TLS-ALPN-01 challenge for one name at once (each its own order);
 * a handshake can present one: the one that lives longest, the likeliest newest. (A gateway of
 * the name could win that with a wrong answer, but it can fail a validation sent to it anyway.)
 */
function keepLongest(map: Map<string, RelayedAnswer>, key: string, a: RelayedAnswer): void {
  const had = map.get(key);
  if (had === undefined || had.expiresAt < a.expiresAt) map.set(key, a);
}
const challengeKey = (a: { type: string; token: string }) => `${a.type} ${a.token}`;

export class RelayedChallengeStore implements ChallengeStore {
  readonly #own: LocalChallengeStore;
  /** This gateway's outbox (its answers with the relay's shorter lifetime), by type and token. */
  readonly #outbox = new Map<string, RelayedAnswer>();
  readonly #outboxKey: string;
  readonly #inboxKey: string;
  readonly #now: () => number;
  /** Each Redis's inbox as last read: kept while that Redis is unreachable (entries expire). */
  readonly #views: View[];
  #merged: View = EMPTY;
  readonly #failing: boolean[];
  readonly #waiters = new Set<() => void>();
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(private readonly options: RelayedChallengeOptions) {
    this.#now = options.now ?? Date.now;
    this.#own = new LocalChallengeStore(this.#now);
    this.#outboxKey = challengeOutboxKey(options.prefix, options.gatewayId);
    this.#inboxKey = challengeInboxKey(options.prefix, options.gatewayId);
    this.#views = options.redis.map(() => EMPTY);
    this.#failing = options.redis.map(() => false);
    // A Redis that restarted has lost the outbox: write it again whenever one comes back.
    options.redis.forEach((r, i) => r.on('ready', () => void this.#writeOutbox(i)));
  }

  /** Connections of its own to each of the gateway's Redis endpoints (closed by `close`). */
  static connect(
    redis: GatewayRedisConfig,
    gatewayId: string,
    instanceId: string,
    log: Logger,
    options: Partial<Pick<RelayedChallengeOptions, 'pollMs' | 'confirmTimeoutMs' | 'settleMs'>> = {},
  ): RelayedChallengeStore {
    const connections = redisEndpoints(redis).map((e, i) =>
      createRedis(e, 'fail-fast', `nonstop-gw-${gatewayId}-${instanceId}-acme-${i}`, log, {
        readyCheck: false,
      }),
    );
    const store = new RelayedChallengeStore({
      ...options,
      redis: connections,
      prefix: redis.prefix,
      gatewayId,
      log,
    });
    store.#ownsConnections = true;
    return store;
  }

  #ownsConnections = false;

  start(): void {
    const tick = () => {
      void this.poll().finally(() => {
        if (!this.#closed) this.#timer = setTimeout(tick, this.options.pollMs ?? INBOX_POLL_MS);
      });
    };
    tick();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const w of this.#waiters) w();
    if (this.#ownsConnections) for (const r of this.options.redis) r.disconnect();
  }

  /**
   * Answers it at once from here, writes it to every broker's outbox, and resolves when a
   * broker has relayed it (it shows in this gateway's own inbox: the broker checked it and
   * handed it to every gateway of the name) and `settleMs` more have passed (the others have
   * read it by then), or after `confirmTimeoutMs` with a warning (no broker relayed it: the
   * other gateways of the name may not answer it).
   */
  async publish(answer: ChallengeAnswer): Promise<void> {
    await this.#own.publish(answer);
    const now = this.#now();
    const relayed: RelayedAnswer = {
      type: answer.type,
      identifier: answer.identifier.toLowerCase(),
      token: answer.token,
      keyAuthorization: answer.keyAuthorization,
      // Brokers refuse answers further ahead than this by their clocks.
      expiresAt: Math.min(answer.expiresAt, now + MAX_ANSWER_LIFETIME_MS - CLOCK_SLACK_MS),
    };
    this.#outbox.set(challengeKey(relayed), relayed);
    await this.#writeOutboxes();
    const seen = await this.#until(
      () => this.#relayed(relayed),
      this.options.confirmTimeoutMs ?? CONFIRM_TIMEOUT_MS,
    );
    if (seen) await this.#settle(this.options.settleMs ?? SETTLE_MS);
    else
      this.options.log.warn(
        { type: relayed.type, identifier: relayed.identifier },
        'no broker relayed the ACME challenge answer in time; other gateways of the name may not answer it',
      );
  }

  async withdraw(answer: ChallengeAnswer): Promise<void> {
    await this.#own.withdraw(answer);
    if (this.#outbox.delete(challengeKey(answer))) await this.#writeOutboxes();
  }

  httpAnswer(token: string): string | undefined {
    return this.#own.httpAnswer(token) ?? this.#live(this.#merged.http.get(token));
  }

  tlsAlpnAnswer(identifier: string): string | undefined {
    const name = identifier.toLowerCase();
    return this.#own.tlsAlpnAnswer(name) ?? this.#live(this.#merged.tlsAlpn.get(name));
  }

  /** Reads every inbox once (the timer does this every pollMs). */
  async poll(): Promise<void> {
    await Promise.all(this.options.redis.map((r, i) => this.#read(r, i)));
    const http = new Map<string, RelayedAnswer>();
    const tlsAlpn = new Map<string, RelayedAnswer>();
    for (const view of this.#views) {
      for (const [k, a] of view.http) keepLongest(http, k, a);
      for (const [k, a] of view.tlsAlpn) keepLongest(tlsAlpn, k, a);
    }
    this.#merged = { http, tlsAlpn };
    if (this.#pruneOutbox()) await this.#writeOutboxes();
    for (const w of [...this.#waiters]) w();
  }

  async #read(redis: Redis, i: number): Promise<void> {
    let fields: Record<string, string>;
    try {
      fields = await redis.hgetall(this.#inboxKey);
      this.#failing[i] = false;
    } catch (err) {
      if (!this.#failing[i])
        this.options.log.warn(
          { endpoint: i, err: err instanceof Error ? err.message : String(err) },
          'reading relayed ACME challenge answers failed; keeping what was read before',
        );
      this.#failing[i] = true;
      return;
    }
    const now = this.#now();
    const http = new Map<string, RelayedAnswer>();
    const tlsAlpn = new Map<string, RelayedAnswer>();
    for (const text of Object.values(fields))
      for (const a of parseInboxField(text, now)) {
        if (a.type === 'http-01') keepLongest(http, a.token, a);
        else keepLongest(tlsAlpn, a.identifier, a);
      }
    this.#views[i] = { http, tlsAlpn };
  }

  #live(answer: RelayedAnswer | undefined): string | undefined {
    return answer !== undefined && answer.expiresAt > this.#now() ? answer.keyAuthorization : undefined;
  }

  /** True once a broker has relayed this answer (it is in this gateway's own inbox). */
  relayed(answer: ChallengeAnswer): boolean {
    return this.#relayed({ ...answer, identifier: answer.identifier.toLowerCase() });
  }

  #relayed(a: Pick<RelayedAnswer, 'type' | 'identifier' | 'token' | 'keyAuthorization'>): boolean {
    const got =
      a.type === 'http-01' ? this.#merged.http.get(a.token) : this.#merged.tlsAlpn.get(a.identifier);
    return got?.token === a.token && got.keyAuthorization === a.keyAuthorization;
  }

  #pruneOutbox(): boolean {
    const now = this.#now();
    let pruned = false;
    for (const [k, a] of this.#outbox)
      if (a.expiresAt <= now) {
        this.#outbox.delete(k);
        pruned = true;
      }
    return pruned;
  }

  #writeOutboxes(): Promise<void> {
    return Promise.all(this.options.redis.map((_, i) => this.#writeOutbox(i))).then(() => {});
  }

  /** The whole outbox as one string key, gone (PXAT) when its last answer expires. */
  async #writeOutbox(i: number): Promise<void> {
    const redis = this.options.redis[i]!;
    this.#pruneOutbox();
    const answers = [...this.#outbox.values()];
    try {
      if (answers.length === 0) await redis.del(this.#outboxKey);
      else
        await redis.set(
          this.#outboxKey,
          JSON.stringify(answers),
          'PXAT',
          Math.max(...answers.map((a) => a.expiresAt)),
        );
    } catch (err) {
      // That broker relays nothing new until its Redis is back (then 'ready' writes again).
      this.options.log.warn(
        { endpoint: i, err: err instanceof Error ? err.message : String(err) },
        'writing the ACME challenge outbox failed',
      );
    }
  }

  /** Resolves after `ms`, or at close. */
  #settle(ms: number): Promise<void> {
    return this.#until(() => false, ms).then(() => undefined);
  }

  /** Resolves true once `done()` holds after a poll, false after `timeoutMs` or at close. */
  #until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(ok);
      };
      const check = () => {
        if (done()) finish(true);
        else if (this.#closed) finish(false);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      this.#waiters.add(check);
    });
  }
}
