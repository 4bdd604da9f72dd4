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

test('during a rotation both secrets of a client open, and a step is spent by either', () => {
  // Fixed secrets (a rotation from OLD to NEW), so the ports are the same on every run.
  const OLD = 'b2xkLW9sZC1vbGQtb2xkLW9sZC1vbGQtb2xkLW9sZC0';
  const NEW = 'bmV3LW5ldy1uZXctbmV3LW5ldy1uZXctbmV3LW5ldy0';
  const guard = (client: Record<string, string>) =>
    new SequenceCatalog(
      parseGuardConfig('guard.json', {
        kind: 'guard',
        gateway: 'gw1',
        rotating: { ...params, clients: [{ name: 'b1', ...client }] },
      }),
    );
  const now = 1_000_000_000_000;
  const step = timeStep(now, 30);
  const first = (s: string, at: number) =>
    deriveSequence({ gateway: 'gw1', client: 'b1', secret: s }, at, params)[0]!;
  /** The sequences that open for secret `s` at step `at`, found by their first port. */
  const opening = (c: SequenceCatalog, s: string, id: string, at = step) =>
    c.startingWith(first(s, at), now).filter((q) => q.id === `${id}@${at}` && c.isValid(q, now));
  const samePorts = (q: { steps: readonly { port: number }[] }, s: string, at: number) =>
    ports([...q.steps]).join() ===
    ports(deriveSequence({ gateway: 'gw1', client: 'b1', secret: s }, at, params)).join();
  const NEW_ID = 'b1';
  const OLD_ID = 'previous:b1';

  const rotating = guard({ secret: NEW, previousSecret: OLD });
  for (const at of [step - 1, step, step + 1]) {
    assert.equal(opening(rotating, NEW, NEW_ID, at).length, 1, `the new secret opens at step ${at - step}`);
    assert.equal(opening(rotating, OLD, OLD_ID, at).length, 1, `the previous one opens at step ${at - step}`);
  }
  // Beyond the tolerance the previous secret is not even tracked for diagnosis.
  assert.equal(
    rotating.startingWith(first(OLD, step + 2), now).some((q) => q.id.startsWith('previous:')),
    false,
  );
  // The old secret knocked this step: the new one cannot open the same (client, step) again.
  rotating.consume(opening(rotating, OLD, OLD_ID)[0]!, now);
  assert.equal(opening(rotating, NEW, NEW_ID).length, 0, 'the step is spent, whichever secret spent it');
  assert.equal(opening(rotating, NEW, NEW_ID, step + 1).length, 1, 'the next step still opens');

  // After the rotation (no previousSecret) the old secret opens nothing at any accepted step.
  const after = guard({ secret: NEW });
  for (const at of [step - 1, step, step + 1]) {
    const old = after.startingWith(first(OLD, at), now);
    assert.equal(
      old.filter((q) => after.isValid(q, now) && q.diagnostic !== true && samePorts(q, OLD, at)).length,
      0,
    );
  }
  assert.equal(opening(after, NEW, NEW_ID).length, 1);
});

test('a previousSecret equal to the secret is refused, naming the field', () => {
  const s = 'bmV3LW5ldy1uZXctbmV3LW5ldy1uZXctbmV3LW5ldy0';
  assert.throws(
    () =>
      parseGuardConfig('guard.json', {
        kind: 'guard',
        gateway: 'gw1',
        rotating: { clients: [{ name: 'b1', secret: s, previousSecret: s }] },
      }),
    /guard\.json: field "rotating\.clients\[0\]\.previousSecret" is the same as "secret"/,
  );
});
