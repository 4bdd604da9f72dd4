// The queue's clock is its Redis server's. A gateway stamps an envelope's receivedAt and deadline,
// and the broker that takes the job judges them, in the time of the Redis between them (on the
// broker's host), each side knowing how far its own clock is from that one: a gateway and a
// broker whose clocks disagree by 20 s (the knocks' tolerance is 30 s) still agree on when a
// request expires, where raw Date.now() on both sides made every job look expired (the broker
// ahead) or stamped in the future, a forgery (the broker behind).
//
// The offset is measured with TIME: a few round trips, the one with the shortest round trip
// counted, its server time taken as the midpoint (error at most half that round trip). Measured
// again every `intervalMs` and after each reconnect. Until a first measurement, or when TIME is
// refused (a Redis whose ACL predates this), the offset is 0: the old behaviour, said once.
import type { Envelope } from './envelope.js';
import type { Logger } from './log.js';
import type { Redis } from './redis.js';

/** How often the offset is measured again. */
export const QUEUE_CLOCK_INTERVAL_MS = 30_000;
/** Round trips per measurement; the shortest one counts. */
const SAMPLES = 3;
/** An offset that moved by more than this between measurements is logged (a clock was stepped). */
const STEP_LOG_MS = 1000;

/** What a measurement found. */
export interface ClockSample {
  /** Redis's clock minus ours, in ms. */
  readonly offsetMs: number;
  /** The round trip it was taken in, in ms: the offset is within half of it. */
  readonly rttMs: number;
}

/** Redis's TIME reply (seconds, microseconds) in ms. */
export function parseRedisTime(reply: unknown): number {
  if (!Array.isArray(reply) || reply.length !== 2) throw new Error(`TIME answered ${JSON.stringify(reply)}`);
  const [s, us] = reply.map((x) => Number(x));
  if (!Number.isSafeInteger(s) || !Number.isSafeInteger(us) || s! < 0 || us! < 0 || us! >= 1e6)
    throw new Error(`TIME answered ${JSON.stringify(reply)}`);
  return s! * 1000 + us! / 1000;
}

/** One measurement: the sample of the shortest round trip among `samples`. */
export async function measureOffset(
  time: () => Promise<unknown>,
  now: () => number = Date.now,
  samples = SAMPLES,
): Promise<ClockSample> {
  let best: ClockSample | undefined;
  for (let i = 0; i < samples; i++) {
    const sent = now();
    const server = parseRedisTime(await time());
    const back = now();
    const rttMs = back - sent;
    if (best === undefined || rttMs < best.rttMs)
      best = { offsetMs: Math.round(server - (sent + back) / 2), rttMs };
  }
  return best!;
}

export class QueueClock {
  #offsetMs = 0;
  #measured = false;
  #tried = false;
  #refusedSaid = false;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
    private readonly intervalMs = QUEUE_CLOCK_INTERVAL_MS,
  ) {
    redis.on('ready', () => void this.measure());
    if (redis.status === 'ready') void this.measure();
    this.#timer = setInterval(() => void this.measure(), intervalMs);
    this.#timer.unref();
  }

  /** Redis's clock minus ours, in ms (0 until measured). */
  get offsetMs(): number {
    return this.#offsetMs;
  }

  /** Whether a measurement has succeeded. */
  get measured(): boolean {
    return this.#measured;
  }

  /** Whether a measurement has been tried to its end (succeeded, refused or failed). */
  get settled(): boolean {
    return this.#tried;
  }

  /** Now, in the queue's clock. */
  now(): number {
    return Date.now() + this.#offsetMs;
  }

  /** A time of the queue's clock in ours. */
  toLocal(queueMs: number): number {
    return queueMs - this.#offsetMs;
  }

  /** `envelope` as stamped in our clock, with its receivedAt and deadline in the queue's. */
  stamp(envelope: Envelope): Envelope {
    const offset = this.#offsetMs;
    return offset === 0
      ? envelope
      : { ...envelope, receivedAt: envelope.receivedAt + offset, deadline: envelope.deadline + offset };
  }

  /** Measures now (one at a time); failures keep the offset found before. */
  measure(): Promise<void> {
    this.#running ??= this.#measure().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #measure(): Promise<void> {
    if (this.redis.status !== 'ready') return;
    let sample: ClockSample;
    try {
      sample = await measureOffset(() => this.redis.call('TIME'));
    } catch (err) {
      this.#tried = true;
      const message = (err as Error).message;
      if (/NOPERM/.test(message) && !this.#refusedSaid) {
        this.#refusedSaid = true;
        this.log.warn(
          { err: message },
          "this Redis refuses TIME (its ACL is older than this version): the queue's times are ours, " +
            'which is right only while the two clocks agree; render the ACL again (nonstop redis-acl)',
        );
      }
      return;
    }
    const moved = sample.offsetMs - this.#offsetMs;
    if (!this.#measured || Math.abs(moved) > STEP_LOG_MS)
      this.log.info(
        { offsetMs: sample.offsetMs, rttMs: sample.rttMs, ...(this.#measured ? { movedMs: moved } : {}) },
        "the queue's clock (its Redis server's) against ours",
      );
    this.#offsetMs = sample.offsetMs;
    this.#measured = true;
    this.#tried = true;
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
