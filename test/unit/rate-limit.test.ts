import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateLimiter } from '../../gateway/rate-limit.js';

test('a client gets its burst, then is refused until tokens refill', () => {
  let now = 0;
  const limiter = new RateLimiter(2, 3, 100, () => now);
  for (let i = 0; i < 3; i++) assert.equal(limiter.take('a').allowed, true);
  const refused = limiter.take('a');
  assert.equal(refused.allowed, false);
  assert.equal(refused.retryAfterSeconds, 1);
  assert.equal(limiter.take('b').allowed, true, 'another address has its own bucket');
  now += 500; // one token at 2/s
  assert.equal(limiter.take('a').allowed, true);
  assert.equal(limiter.take('a').allowed, false);
});

test('memory is bounded: past the cap the least recently seen address is forgotten', () => {
  const limiter = new RateLimiter(1, 1, 16, () => 0);
  for (let i = 0; i < 1000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`);
  assert.equal(limiter.tracked, 16);
});
