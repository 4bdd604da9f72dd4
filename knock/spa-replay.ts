// Remembers the SPA packets already acted on, so that a recorded packet sent again opens nothing.
// A digest must be remembered for as long as decodeSpa would still accept its packet: a packet
// stamped t is accepted from t - skew until t + maxAge, so maxAge + skew after first sight covers
// it whatever the client's clock said. Pure: the caller passes the time.

export function spaReplayLifetimeMs(maxAgeSeconds: number, skewSeconds: number): number {
  return (maxAgeSeconds + skewSeconds) * 1000;
}

export interface SpaReplayCacheOptions {
  /** spaReplayLifetimeMs(maxAge, skew) for the decoder's window. */
  readonly lifetimeMs: number;
  readonly maxEntries: number;
}

/** `fresh`: first sight, now remembered. `replay`: seen within its lifetime. `full`: refused, see below. */
export type SpaReplayVerdict = 'fresh' | 'replay' | 'full';

export class SpaReplayCache {
  readonly lifetimeMs: number;
  readonly maxEntries: number;
  // digest → expiry. Every entry lives exactly lifetimeMs, so insertion order is expiry order
  // (for a clock that does not run backwards) and the sweep stops at the first live entry.
  readonly #expires = new Map<string, number>();

  constructor(options: SpaReplayCacheOptions) {
    if (!(options.lifetimeMs > 0) || !Number.isInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError('SpaReplayCache needs lifetimeMs > 0 and a whole maxEntries >= 1');
    }
    this.lifetimeMs = options.lifetimeMs;
    this.maxEntries = options.maxEntries;
  }

  get size(): number {
    return this.#expires.size;
  }

  /**
   * Looks `digest` up and, if new, remembers it. When the cache is full of live digests the
   * packet is refused (`full`) rather than evicting one: an evicted digest still inside its
   * window could be replayed, and whoever fills the cache (only authenticated packets reach it,
   * but a recorded batch of them is enough) would choose which. Refusing costs availability until
   * the oldest entry expires — at most lifetimeMs — and never opens the port for a replay.
   */
  admit(digest: string, nowMs: number): SpaReplayVerdict {
    this.sweep(nowMs);
    const expires = this.#expires.get(digest);
    if (expires !== undefined) {
      if (expires > nowMs) return 'replay';
      this.#expires.delete(digest); // expired but behind a live entry: re-add at the back
    }
    if (this.#expires.size >= this.maxEntries) return 'full';
    this.#expires.set(digest, nowMs + this.lifetimeMs);
    return 'fresh';
  }

  /**
   * Puts back a digest remembered before a restart (knock/guard-state.ts), with its expiry; call
   * with the oldest first and before any admit, so insertion order stays expiry order.
   */
  restore(digest: string, expiresMs: number): void {
    this.#expires.delete(digest);
    this.#expires.set(digest, expiresMs);
  }

  /** The live digests with their expiry, oldest first (what a restart must get back). */
  *entries(nowMs: number): Iterable<[string, number]> {
    for (const entry of this.#expires) if (entry[1] > nowMs) yield entry;
  }

  /** Drops expired digests from the front; O(expired entries). */
  sweep(nowMs: number): void {
    for (const [digest, expires] of this.#expires) {
      if (expires > nowMs) break;
      this.#expires.delete(digest);
    }
  }
}
