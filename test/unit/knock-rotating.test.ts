import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SequenceCatalog } from '../../knock/catalog.js';
import { deriveSequence, newKnockSecret, timeStep } from '../../knock/rotating.js';
import { parseGuardConfig } from '../../config/knock.js';

const params = { portMin: 20000, portMax: 29999, length: 4, stepSeconds: 30 };
const secret = newKnockSecret();
const id = { gateway: 'gw1', client: 'alice', secret };
const ports = (seq: { port: number }[]) => seq.map((s) => s.port);

test('derivation is deterministic', () => {
  assert.deepEqual(deriveSequence(id, 1000, params), deriveSequence({ ...id }, 1000, params));
});

test('derivation differs per client, gateway, secret and step', () => {
  const base = ports(deriveSequence(id, 1000, params));
  assert.notDeepEqual(ports(deriveSequence({ ...id, client: 'bob' }, 1000, params)), base);
  assert.notDeepEqual(ports(deriveSequence({ ...id, gateway: 'gw2' }, 1000, params)), base);
  assert.notDeepEqual(ports(deriveSequence({ ...id, secret: newKnockSecret() }, 1000, params)), base);
  assert.notDeepEqual(ports(deriveSequence(id, 1001, params)), base);
});

test('ports are TCP, in range and distinct, even in a tight range', () => {
  for (let step = 0; step < 500; step++) {
    const tight = { ...params, portMin: 40000, portMax: 40007, length: 4 };
    for (const p of [params, tight]) {
      const seq = deriveSequence(id, step, p);
      assert.equal(seq.length, p.length);
      assert.equal(new Set(ports(seq)).size, p.length);
      for (const s of seq) {
        assert.equal(s.protocol, 'tcp');
        assert.ok(s.port >= p.portMin && s.port <= p.portMax);
      }
    }
  }
});

test('time steps', () => {
  assert.equal(timeStep(0, 30), 0);
  assert.equal(timeStep(29999, 30), 0);
  assert.equal(timeStep(30000, 30), 1);
});

test('the catalog accepts the current and previous step, each once', () => {
  const config = parseGuardConfig('guard.json', {
    kind: 'guard',
    gateway: 'gw1',
    rotating: { ...params, clients: [{ name: 'alice', secret }] },
  });
  const catalog = new SequenceCatalog(config);
  const now = 1_000_000_000_000;
  const step = timeStep(now, 30);
  for (const s of [step, step - 1]) {
    const first = deriveSequence(id, s, params)[0]!;
    const found = catalog.startingWith(first, now).find((q) => q.id === `alice@${s}`);
    assert.ok(found, `step ${s} is accepted`);
    assert.equal(catalog.isValid(found, now), true);
  }
  const older = deriveSequence(id, step - 2, params)[0]!;
  assert.equal(
    catalog.startingWith(older, now).some((q) => q.id === `alice@${step - 2}`),
    false,
  );
  const current = catalog
    .startingWith(deriveSequence(id, step, params)[0]!, now)
    .find((q) => q.id === `alice@${step}`)!;
  catalog.consume(current, now);
  assert.equal(catalog.isValid(current, now), false, 'used once');
  assert.equal(
    catalog.startingWith(deriveSequence(id, step, params)[0]!, now).some((q) => q.id === current.id),
    false,
  );
  // One step later the used pair is still remembered (it is still the "previous" step)...
  assert.equal(catalog.isValid(current, now + 30000), false);
  // ...and two steps later it is forgotten, since it can no longer be valid anyway.
  catalog.startingWith({ port: 1, protocol: 'tcp' }, now + 60000);
  assert.equal(catalog.usedCount, 0);
});
