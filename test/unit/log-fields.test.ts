import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LOG_FIELD_MAX, clip, clipped } from '../../lib/log-fields.js';

test('gateway-controlled values are clipped for logs, with their length', () => {
  assert.equal(clip('short'), 'short');
  assert.equal(clip(undefined), '');
  assert.equal(clip(42), '42');
  const huge = 'n'.repeat(50 << 20);
  const line = clip(huge);
  assert.ok(line.length < LOG_FIELD_MAX + 40, `${line.length} chars`);
  assert.ok(line.startsWith('n'.repeat(LOG_FIELD_MAX)));
  assert.match(line, /\(52428800 chars\)$/);
  assert.equal(clip('abcdef', 3), 'abc… (6 chars)');
  assert.equal(clip(Buffer.alloc(10)), '<10 bytes>');
  assert.equal(clip({ toString: () => 'x'.repeat(1000) }), '[object Object]');
  assert.deepEqual(clipped({ jobId: 'j'.repeat(300), jobName: 'n' }, 5), {
    jobId: 'jjjjj… (300 chars)',
    jobName: 'n',
  });
});
