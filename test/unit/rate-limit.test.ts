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

test('the addresses of one IPv6 /64 share one bucket; another /64 has its own', () => {
  const limiter = new RateLimiter(1, 3, 100, () => 0);
  const allowed = [];
  for (let i = 1; i <= 50; i++) allowed.push(limiter.take(`2001:db8:0:1::${i.toString(16)}`).allowed);
  assert.equal(allowed.filter(Boolean).length, 3, 'one burst for the whole /64');
  assert.equal(limiter.tracked, 1);
  assert.equal(limiter.take('2001:db8:0:2::1').allowed, true, 'the next /64 is another client');
  // IPv4-mapped IPv6 is the IPv4 client.
  for (let i = 0; i < 3; i++) assert.equal(limiter.take('198.18.0.9').allowed, true);
  assert.equal(limiter.take('::ffff:198.18.0.9').allowed, false);
});

test("many addresses of one /64 cannot evict another client's bucket", () => {
  const limiter = new RateLimiter(1, 2, 16, () => 0);
  assert.equal(limiter.take('198.18.0.1').allowed, true);
  assert.equal(limiter.take('198.18.0.1').allowed, true);
  assert.equal(limiter.take('2001:db8:0:9::1').allowed, true);
  assert.equal(limiter.take('2001:db8:0:9::1').allowed, true);
  for (let i = 0; i < 100_000; i++)
    limiter.take(`2001:db8:0:1:${((i >> 16) & 0xffff).toString(16)}:${(i & 0xffff).toString(16)}::1`);
  assert.equal(limiter.tracked, 3);
  // Still remembered, so still empty: an evicted bucket would have come back full.
  assert.equal(limiter.take('198.18.0.1').allowed, false);
  assert.equal(limiter.take('2001:db8:0:9::2').allowed, false);
});

test('the prefix length is configurable', () => {
  const per48 = new RateLimiter(1, 1, 100, () => 0, 48);
  assert.equal(per48.take('2001:db8:1:1::1').allowed, true);
  assert.equal(per48.take('2001:db8:1:2::1').allowed, false, 'same /48');
  const per128 = new RateLimiter(1, 1, 100, () => 0, 128);
  assert.equal(per128.take('2001:db8:1:1::1').allowed, true);
  assert.equal(per128.take('2001:db8:1:1::2').allowed, true, 'per address at /128');
});
