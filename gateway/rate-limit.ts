// Per-client token buckets: one per IPv4 address, one per IPv6 prefix (`lib/ip-prefix.ts`), so
// that the 2^64 addresses of one /64 are one client and cannot push other clients' buckets out.
// Memory is bounded: past `maxTracked` clients the least recently seen one is forgotten (a Map
// iterates in insertion order; a hit re-inserts).
import { sourceKey } from '../lib/ip-prefix.js';

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export interface RateDecision {
  readonly allowed: boolean;
  /** Seconds until one token is available again (only when refused). */
  readonly retryAfterSeconds: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly maxTracked: number,
    private readonly now: () => number = Date.now,
    private readonly ipv6PrefixLength = 64,
  ) {}

  take(address: string): RateDecision {
    const now = this.now();
    const ip = sourceKey(address, this.ipv6PrefixLength);
    let bucket = this.buckets.get(ip);
    if (bucket === undefined) {
      bucket = { tokens: this.burst, updatedAt: now };
      if (this.buckets.size >= this.maxTracked) {
        const oldest = this.buckets.keys().next();
        if (!oldest.done) this.buckets.delete(oldest.value);
      }
    } else {
      this.buckets.delete(ip);
      const elapsed = Math.max(0, now - bucket.updatedAt) / 1000;
      bucket.tokens = Math.min(this.burst, bucket.tokens + elapsed * this.ratePerSecond);
      bucket.updatedAt = now;
    }
    this.buckets.set(ip, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true, retryAfterSeconds: 0 };
    }
    return {
      allowed: false,
      retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / this.ratePerSecond)),
    };
  }

  get tracked(): number {
    return this.buckets.size;
  }
}
