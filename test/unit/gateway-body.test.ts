// The gateway's body checks that run before any queue work.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isJsonContentType, MAX_JSON_DEPTH, nestedDeeperThan } from '../../gateway/body.js';

const nest = (depth: number, open: string, close: string): unknown =>
  JSON.parse(`${open.repeat(depth)}1${close.repeat(depth)}`) as unknown;

test('JSON nesting is measured without recursion, arrays and objects alike', () => {
  assert.equal(nestedDeeperThan(1, 0), false);
  assert.equal(nestedDeeperThan({}, 0), true);
  assert.equal(nestedDeeperThan(nest(MAX_JSON_DEPTH, '[', ']'), MAX_JSON_DEPTH), false);
  assert.equal(nestedDeeperThan(nest(MAX_JSON_DEPTH + 1, '[', ']'), MAX_JSON_DEPTH), true);
  assert.equal(nestedDeeperThan(nest(MAX_JSON_DEPTH, '{"a":', '}'), MAX_JSON_DEPTH), false);
  assert.equal(nestedDeeperThan(nest(MAX_JSON_DEPTH + 1, '{"a":', '}'), MAX_JSON_DEPTH), true);
  // Deep enough to overflow any recursive walk (or JSON.stringify).
  assert.equal(nestedDeeperThan(nest(200_000, '[', ']'), MAX_JSON_DEPTH), true);
  // A wide value is not a deep one.
  const wide = { items: Array.from({ length: 10_000 }, (_, i) => ({ i, tags: ['a', 'b'] })) };
  assert.equal(nestedDeeperThan(wide, 4), false);
  assert.equal(nestedDeeperThan(wide, 3), true);
});

test('JSON content types', () => {
  assert.ok(isJsonContentType('application/json; charset=utf-8'));
  assert.ok(isJsonContentType('application/merge-patch+json'));
  assert.ok(!isJsonContentType('text/json'));
  assert.ok(!isJsonContentType(undefined));
});
