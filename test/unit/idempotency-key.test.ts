import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadRoutes } from '../../config/routes.js';
import { canonicalJson, requestFingerprint } from '../../core/fingerprint.js';
import { buildEnvelope } from '../../gateway/envelope.js';
import { IdempotencyScope, parseIdempotencyKey } from '../../gateway/idempotency-key.js';
import { readIdempotencySecret, writeIdempotencySecret } from '../../gateway/idempotency-secret.js';
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

const SECRET = Buffer.from(Array.from({ length: 32 }, (_, i) => i + 1));

test('a key maps to a fixed version 8 UUID, the same on every gateway holding the secret', () => {
  // Computed independently with openssl: identity = HMAC-SHA256(secret,
  // "nonstop/idempotency-identity/v1\0" + '[["authorization",null],["cookie",null]]'), id =
  // HMAC-SHA256(secret, "nonstop/idempotency-key/v2\0" + identity + "\0order-42"), first 16
  // bytes, version and variant bits set. Changing the derivation would split retries.
  const scope = new IdempotencyScope(SECRET);
  const anonymous = scope.keyed('order-42', {});
  assert.equal(anonymous.identity, '120b3158a3729bef1b12df6aa2457296b0c7a6332b60d7dd0d5fb3a3ca2bd705');
  assert.equal(anonymous.id, 'd3088021-025f-83c5-886f-eb23e7f15033');
  assert.equal(
    scope.identity({ authorization: 'Bearer alice' }),
    'f2a7d0c6fc698d767d6d2fa79742e9797ab9414f6ce89d9f851ec22c444d83b4',
  );
  const ids = new Set<string>();
  for (const key of ['a', 'b', 'A', 'order-42', 'order-43', 'k'.repeat(128)]) {
    const id = scope.keyed(key, {}).id;
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(new IdempotencyScope(Buffer.from(SECRET)).keyed(key, {}).id, id, 'another gateway');
    ids.add(id);
  }
  assert.equal(ids.size, 6, 'different keys, different ids');
});

test('the id is not a function of the key alone: it needs the deployment secret', () => {
  const key = 'order-42';
  const id = new IdempotencyScope(SECRET).keyed(key, {}).id;
  // The old derivation anyone could recompute offline: SHA-256(domain ‖ key).
  const plain = createHash('sha256').update(`nonstop/idempotency-key/v1\0${key}`).digest('hex');
  assert.notEqual(id.replaceAll('-', '').slice(0, 8), plain.slice(0, 8));
  const otherSecret = new IdempotencyScope(Buffer.alloc(32, 0xaa)).keyed(key, {}).id;
  assert.notEqual(otherSecret, id, 'another deployment, another id');
  assert.throws(() => new IdempotencyScope(Buffer.alloc(31)), /at least 32 bytes/);
});

test('the same key from another identity is another request id; the identity is not in clear', () => {
  const scope = new IdempotencyScope(SECRET);
  const alice = scope.keyed('order-42', { authorization: 'Bearer alice' });
  const bob = scope.keyed('order-42', { authorization: 'Bearer bob' });
  const cookie = scope.keyed('order-42', { authorization: 'Bearer alice', cookie: 'sid=1' });
  const none = scope.keyed('order-42', {});
  const emptyAuth = scope.keyed('order-42', { authorization: '' });
  const ids = new Set([alice.id, bob.id, cookie.id, none.id, emptyAuth.id]);
  assert.equal(ids.size, 5, 'each identity has its own id for the key');
  assert.equal(scope.keyed('order-42', { authorization: 'Bearer alice' }).id, alice.id, 'stable');
  // Headers outside the identity set do not matter.
  assert.equal(scope.keyed('order-42', { authorization: 'Bearer alice', 'user-agent': 'x' }).id, alice.id);
  assert.match(alice.identity, /^[0-9a-f]{64}$/);
  assert.ok(!alice.identity.includes(Buffer.from('alice').toString('hex')));
  // A configured set replaces the default one.
  const authOnly = new IdempotencyScope(SECRET, ['authorization']);
  assert.equal(
    authOnly.keyed('k', { authorization: 'a', cookie: 'one' }).id,
    authOnly.keyed('k', { authorization: 'a', cookie: 'two' }).id,
  );
});

test('the secret file: base64 of 32 bytes or more, readable by the gateway alone', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nonstop-idem-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'secret');
  assert.equal(writeIdempotencySecret(file), true);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(readIdempotencySecret(file).length, 32);
  const before = readFileSync(file, 'utf8');
  assert.equal(writeIdempotencySecret(file, { keep: true }), false, 'kept');
  assert.equal(readFileSync(file, 'utf8'), before);
  chmodSync(file, 0o640);
  assert.equal(readIdempotencySecret(file).length, 32, "0640 for the gateway's group is fine");
  chmodSync(file, 0o644);
  assert.throws(() => readIdempotencySecret(file), /idempotency\.secretFile: .* mode 0644/);
  writeFileSync(file, 'c2hvcnQ=\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  assert.throws(() => readIdempotencySecret(file), /at least 32 random bytes/);
  writeFileSync(file, 'not base64 at all, not at all, not at all, no\n');
  assert.throws(() => readIdempotencySecret(file), /base64/);
  assert.throws(() => readIdempotencySecret(join(dir, 'missing')), /cannot read .*ENOENT/);
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
  const keyed = new IdempotencyScope(SECRET).keyed('order-42', {});
  const a = buildEnvelope({ ...input, gatewayId: 'gw1', keyed });
  const b = buildEnvelope({ ...input, gatewayId: 'gw2', keyed });
  assert.equal(a.id, keyed.id);
  assert.equal(b.id, a.id, 'not per gateway');
  assert.equal(a.idempotent, true);
  assert.equal(a.identity, keyed.identity);
  const plain = buildEnvelope({ ...input, gatewayId: 'gw1' });
  assert.equal(plain.idempotent, false);
  assert.equal(plain.identity, undefined);
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
  assert.ok(
    !idMatchesKind(makeEnvelope({ ...base, id: new IdempotencyScope(SECRET).keyed('x', {}).id })),
    'keyed id without flag',
  );
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
    // Another identity (its digest; the header values never reach the core).
    { body: { title: 't', tags: ['a', 'b'], meta: { x: 1, y: 2 } }, identity: 'ab'.repeat(32) },
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
