import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadRoutes } from '../../config/routes.js';
import { buildEnvelope, parseQuery, pickHeaders } from '../../gateway/envelope.js';
import { parseEnvelope, parseReply, replyKey } from '../../lib/envelope.js';
import { exampleRoutesFile } from '../helpers/files.js';

const route = loadRoutes(exampleRoutesFile).routes[0]!;

function sample() {
  return buildEnvelope({
    route,
    path: '/notes',
    params: {},
    query: { a: '1' },
    headers: { 'user-agent': 'test', cookie: 'secret=1', authorization: 'Bearer x' },
    forwardHeaders: ['user-agent', 'accept-language'],
    body: { title: 'hi' },
    clientIp: '198.18.0.7',
    gatewayId: 'gw1',
    replyTo: 'instance-1',
    now: 1_000,
    timeoutMs: 5_000,
  });
}

test('an envelope has a fresh UUID, the route, allow-listed headers only, and a deadline', () => {
  const a = sample();
  const b = sample();
  assert.match(a.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(a.id, b.id);
  assert.equal(a.route, 'notes.create');
  assert.deepEqual(a.headers, { 'user-agent': 'test' });
  assert.equal(a.deadline, 6_000);
  assert.deepEqual(parseEnvelope(JSON.parse(JSON.stringify(a))), { ok: true, value: a });
});

test('parseEnvelope rejects tampered data', () => {
  const good = JSON.parse(JSON.stringify(sample())) as Record<string, unknown>;
  for (const bad of [
    null,
    'string',
    [],
    { ...good, id: 'not-a-uuid' },
    { ...good, extra: 1 },
    { ...good, method: 'TRACE' },
    { ...good, replyTo: '../other' },
    { ...good, headers: { 'X-Upper': 'a' } },
    { ...good, v: 2 },
    { ...good, clientIp: 'not-an-ip' },
    { ...good, clientIp: '198.18.0.7:443' },
    { ...good, clientIp: 'unknown' },
    { ...good, clientIp: '' },
  ]) {
    assert.equal(parseEnvelope(bad).ok, false, JSON.stringify(bad));
  }
  for (const clientIp of ['198.18.0.7', '2001:db8::7', '::1']) {
    assert.equal(parseEnvelope({ ...good, clientIp }).ok, true, clientIp);
  }
});

test('parseReply accepts replies and rejects anything else', () => {
  const id = sample().id;
  assert.equal(parseReply({ id, status: 200, headers: {}, body: null }).ok, true);
  assert.equal(parseReply({ id, status: 99, headers: {}, body: null }).ok, false);
  assert.equal(parseReply({ id, status: 200, body: null }).ok, false);
});

test('query parsing keeps repeats as arrays and caps the number of keys', () => {
  assert.deepEqual(parseQuery('a=1&b=2&a=3'), { a: ['1', '3'], b: '2' });
  const many = Array.from({ length: 65 }, (_, i) => `k${i}=v`).join('&');
  assert.equal(parseQuery(many), null);
  const proto = parseQuery('__proto__=x');
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.equal(({} as Record<string, unknown>).x, undefined);
});

test('repeated headers are joined; reply keys stay in the gateway key space', () => {
  assert.deepEqual(pickHeaders({ 'accept-language': 'en' }, ['accept-language']), {
    'accept-language': 'en',
  });
  assert.equal(replyKey('nonstop', 'gw1', 'abc'), 'nonstop:gw-gw1:reply:abc');
});
