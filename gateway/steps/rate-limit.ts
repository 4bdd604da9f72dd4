// A token bucket per client address (IPv6 per prefix), before any other work.
import { errors } from '../../lib/errors.js';
import type { RateLimiter } from '../rate-limit.js';
import { refusal, type Exchange, type Step } from './exchange.js';

export function rateLimit(limiter: RateLimiter): Step<Exchange> {
  return ({ clientIp }) => {
    const rate = limiter.take(clientIp);
    if (rate.allowed) return undefined;
    return refusal(errors.RATE_LIMITED(), { 'retry-after': String(rate.retryAfterSeconds) });
  };
}
