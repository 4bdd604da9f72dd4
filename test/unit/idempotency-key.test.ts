import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadRoutes } from '../../config/routes.js';
import { canonicalJson, requestFingerprint } from '../../core/fingerprint.js';
import { buildEnvelope } from '../../gateway/envelope.js';
import { parseIdempotencyKey, requestIdForKey } from '../../gateway/idempotency-key.js';
import { idMatchesKind, parseEnvelope, uuidVersion } from '../../lib/envelope.js';
import { isNonstopError } from '../../lib/errors.js';
import { makeEnvelope } from '../helpers/envelope.js';
import { exampleRoutesFile } from '../helpers/files.js';

function refusal(value: string | string[]): { code: string; status: number | undefined; message: string } {
  try {
    parseIdempotencyKey(value);
  } catch (err) {
    assert.ok(isNonstopError(err));
    return { code: err.code, status: err.status, message: err.message };
  }
  assert.fail(`${JSON.stringify(value)} was accepted`);
}

test('valid keys: 1 to 128 characters from A-Za-z0-9._:~- , bare or as a quoted sf-string', () => {
  assert.equal(parseIdempotencyKey(undefined), undefined);
  assert.equal(parseIdempotencyKey('a'), 'a');
  assert.equal(
    parseIdempotencyKey('8e03978e-40d5-43e8-bc93-6894a57f9324'),
    '8e03978e-40d5-43e8-bc93-6894a57f9324',
  );
  assert.equal(parseIdempotencyKey('Order_42.retry:1~x'), 'Order_42.retry:1~x');
  assert.equal(parseIdempotencyKey('k'.repeat(128)), 'k'.repeat(128));
  assert.equal(parseIdempotencyKey('"order-42"'), 'order-42', 'the quoted form names the same key');
});

test('invalid keys are 400 NONSTOP_ERR_IDEMPOTENCY_KEY_INVALID with a message that says why', () => {
  for (const bad of [
    '',
    '""',
    'k'.repeat(129),
    `"${'k'.repeat(129)}"`,
    'has space',
    'a/b',
    'ключ',
    'a"b',
    '"a',
    'a, b',
  ]) {
    const r = refusal(bad);
    assert.equal(r.code, 'NONSTOP_ERR_IDEMPOTENCY_KEY_INVALID', JSON.stringify(bad));
    assert.equal(r.status, 400);
  }
  assert.match(refusal('k'.repeat(129)).message, /129 characters; at most 128/);
  assert.match(refusal('a/b').message, /only letters, digits/);
  assert.match(refusal('').message, /empty/);
  assert.match(refusal('a, b').message, /one Idempotency-Key header/);
  assert.match(refusal(['a', 'b']).message, /one Idempotency-Key header/);
});

test('a key maps to a fixed version 8 UUID, the same on every gateway', () => {
  // Computed independently: SHA-256("nonstop/idempotency-key/v1\0order-42"), first 16 bytes,
  // version and variant bits set. Changing the derivation would split retries across versions.
  assert.equal(requestIdForKey('order-42'), '0f7d5e0d-5dcd-84b6-8235-eebce3d86356');
  const ids = new Set<string>();
  for (const key of ['a', 'b', 'A', 'order-42', 'order-43', 'k'.repeat(128)]) {
    const id = requestIdForKey(key);
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(requestIdForKey(key), id);
    ids.add(id);
  }
  assert.equal(ids.size, 6, 'different keys, different ids');
});

test('the envelope carries the derived id and idempotent: true; without a key it stays random', () => {
  const route = loadRoutes(exampleRoutesFile).routes[0]!;
  const input = {
    route,
    path: '/notes',
    params: {},
    query: {},
    headers: {},
    forwardHeaders: [],
    body: { title: 'x' },
    clientIp: '198.18.0.7',
    replyTo: 'instance-1',
    now: 1_000,
    timeoutMs: 5_000,
  };
  const a = buildEnvelope({ ...input, gatewayId: 'gw1', idempotencyKey: 'order-42' });
  const b = buildEnvelope({ ...input, gatewayId: 'gw2', idempotencyKey: 'order-42' });
  assert.equal(a.id, requestIdForKey('order-42'));
  assert.equal(b.id, a.id, 'not per gateway');
  assert.equal(a.idempotent, true);
  const plain = buildEnvelope({ ...input, gatewayId: 'gw1' });
  assert.equal(plain.idempotent, false);
  assert.equal(uuidVersion(plain.id), 4);
  for (const e of [a, plain]) {
    assert.ok(parseEnvelope(JSON.parse(JSON.stringify(e))).ok);
    assert.ok(idMatchesKind(e));
  }
});

test('an envelope whose flag and id version disagree is recognised', () => {
  const base = { route: 'notes.create', method: 'POST', path: '/notes' } as const;
  assert.ok(idMatchesKind(makeEnvelope(base)), 'absent flag, random id');
  assert.ok(!idMatchesKind(makeEnvelope({ ...base, idempotent: true })), 'flag on a random id');
  assert.ok(!idMatchesKind(makeEnvelope({ ...base, id: requestIdForKey('x') })), 'keyed id without flag');
  assert.ok(!parseEnvelope({ ...makeEnvelope(base), idempotent: 'yes' }).ok, 'the flag is a boolean');
});

test('the request fingerprint ignores key order and the delivering gateway, not the request', () => {
  const base = { route: 'notes.create', method: 'POST', path: '/notes', idempotent: true } as const;
  const one = makeEnvelope({ ...base, body: { title: 't', tags: ['a', 'b'], meta: { x: 1, y: 2 } } });
  const reordered = makeEnvelope({
    ...base,
    body: { meta: { y: 2, x: 1 }, tags: ['a', 'b'], title: 't' },
    gatewayId: 'gw2',
    clientIp: '198.18.0.99',
    headers: { 'user-agent': 'other' },
  });
  assert.equal(requestFingerprint(one), requestFingerprint(reordered));
  assert.match(requestFingerprint(one), /^[0-9a-f]{64}$/);
  const variants = [
    { body: { title: 'T', tags: ['a', 'b'], meta: { x: 1, y: 2 } } },
    { body: { title: 't', tags: ['b', 'a'], meta: { x: 1, y: 2 } } },
    { body: { title: 't', tags: ['a', 'b'], meta: { x: 1, y: 2 } }, query: { a: '1' } },
    { body: { title: 't', tags: ['a', 'b'], meta: { x: 1, y: 2 } }, params: { id: '1' } },
    { body: { title: 't', tags: ['a', 'b'], meta: { x: 1, y: 2 } }, route: 'notes.update' },
  ];
  for (const v of variants) {
    assert.notEqual(
      requestFingerprint(makeEnvelope({ ...base, ...v })),
      requestFingerprint(one),
      JSON.stringify(v),
    );
  }
  assert.equal(
    canonicalJson({ b: [1, { d: null, c: 'x' }], a: true }),
    '{"a":true,"b":[1,{"c":"x","d":null}]}',
  );
});
