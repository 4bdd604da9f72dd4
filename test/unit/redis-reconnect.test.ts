// How soon a lost Redis connection is tried again: a gateway's Redis is a tunnel port that comes
// back whenever a broker reconnects, so the wait between attempts stays short.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRedis, reconnectDelayMs, RECONNECT_MAX_DELAY_MS } from '../../lib/redis.js';
import { silentLogger } from '../../lib/log.js';

test('reconnect delays double from 50 ms and stop at the cap', () => {
  const delays = Array.from({ length: 12 }, (_, i) => reconnectDelayMs(i + 1));
  assert.deepEqual(delays.slice(0, 4), [50, 100, 200, RECONNECT_MAX_DELAY_MS]);
  assert.ok(delays.every((d) => d > 0 && d <= RECONNECT_MAX_DELAY_MS));
  assert.ok(RECONNECT_MAX_DELAY_MS <= 500, 'a returning tunnel is used within half a second');
  assert.equal(reconnectDelayMs(10_000), RECONNECT_MAX_DELAY_MS);
});

test('every connection nonstop makes uses that strategy', () => {
  for (const role of ['fail-fast', 'blocking'] as const) {
    // Port 1 on loopback: nothing listens; the connection is dropped at once.
    const redis = createRedis({ host: '127.0.0.1', port: 1, prefix: 'x' }, role, 'test', silentLogger());
    try {
      const strategy = redis.options.retryStrategy!;
      for (const attempt of [1, 2, 3, 4, 50])
        assert.equal(strategy(attempt), reconnectDelayMs(attempt), role);
    } finally {
      redis.disconnect();
    }
  }
});
