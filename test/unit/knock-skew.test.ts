// Clock skew between a knocking host and the guard: what the rotating catalog accepts (one step
// either way), what it recognises beyond that without opening, and how often the guard says so.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { parseGuardConfig } from '../../config/knock.js';
import { diagnosisSteps, SequenceCatalog } from '../../knock/catalog.js';
import { OncePer, SKEW_LOG_INTERVAL_MS } from '../../knock/guard.js';
import { deriveSequence, newKnockSecret, timeStep } from '../../knock/rotating.js';
import { KnockTracker, type KnockOutcome } from '../../knock/tracker.js';

const params = { portMin: 20000, portMax: 29999, length: 4, stepSeconds: 30 };
const secret = newKnockSecret();
const id = { gateway: 'gw1', client: 'alice', secret };

function guardSide(stepSeconds = params.stepSeconds) {
  const config = parseGuardConfig('guard.json', {
    kind: 'guard',
    gateway: 'gw1',
    rotating: { ...params, stepSeconds, clients: [{ name: 'alice', secret }] },
  });
  const catalog = new SequenceCatalog(config);
  const tracker = new KnockTracker(catalog, { timeoutMs: 2000, maxSources: 64 });
  return { catalog, tracker };
}

/** A knocker whose clock reads `guardMs + skewMs` knocks; what the guard makes of it. */
function knockWithSkew(guardMs: number, skewMs: number, stepSeconds = params.stepSeconds) {
  const { catalog, tracker } = guardSide(stepSeconds);
  const seq = deriveSequence(id, timeStep(guardMs + skewMs, stepSeconds), { ...params, stepSeconds });
  let outcomes: KnockOutcome[] = [];
  for (const [i, step] of seq.entries()) outcomes = tracker.knock('198.18.0.10', step, guardMs + i * 30);
  const done = outcomes.find((o) => o.kind === 'opened' || o.kind === 'skewed');
  return { kind: done?.kind ?? 'nothing', skewSeconds: done ? catalog.skewSeconds(done.seq, guardMs) : 0 };
}

/** Guard times spread over a few steps, at every phase of a step (every 250 ms). */
const guardTimes = () => {
  const base = 1_800_000_000_000 - (1_800_000_000_000 % 30_000);
  return Array.from({ length: 4 * 120 }, (_, i) => base + i * 250);
};

test('a knocker up to one step (30 s) behind or ahead is accepted at every phase of the step', () => {
  // Ahead: its step may be the guard's next one when the first knock arrives, never beyond.
  // Behind: its step must still be the guard's previous one when the last knock arrives (90 ms
  // after the first here), so the bound is 30 s less the time the sequence takes.
  for (const skewMs of [0, 1000, -1000, 20_000, -20_000, 29_000, -29_000, 30_000, -29_910]) {
    for (const now of guardTimes()) {
      const { kind } = knockWithSkew(now, skewMs);
      assert.equal(kind, 'opened', `skew ${skewMs} ms at ${now % 30_000} ms into the step`);
    }
  }
  const kinds = (skewMs: number) => new Set(guardTimes().map((now) => knockWithSkew(now, skewMs).kind));
  assert.ok(kinds(30_500).has('skewed'), 'over a step ahead fails at some phase');
  assert.ok(kinds(-30_500).has('skewed'), 'over a step behind fails at some phase');
});

test('between one and two steps off it works some of the time; two steps off never', () => {
  for (const skewMs of [45_000, -45_000]) {
    const kinds = guardTimes().map((now) => knockWithSkew(now, skewMs).kind);
    assert.ok(kinds.includes('opened') && kinds.includes('skewed'), `skew ${skewMs}: ${new Set(kinds).size}`);
  }
  for (const skewMs of [60_000, -60_000, 90_000, -90_000, 600_000, -600_000]) {
    for (const now of guardTimes()) {
      const { kind, skewSeconds } = knockWithSkew(now, skewMs);
      assert.equal(kind, 'skewed', `skew ${skewMs} ms at ${now % 30_000} ms into the step opens nothing`);
      // The reported skew is the step difference: within one step of the real one, same sign.
      assert.ok(Math.abs(skewSeconds - skewMs / 1000) <= 30, `reported ${skewSeconds} s for ${skewMs} ms`);
    }
  }
});

test('beyond the diagnosis range a knock is just a wrong one', () => {
  assert.equal(diagnosisSteps(30), 20);
  assert.equal(diagnosisSteps(5), 40, 'capped');
  assert.equal(diagnosisSteps(3600), 1);
  const now = 1_800_000_000_000;
  assert.equal(knockWithSkew(now, 660_000).kind, 'nothing');
  assert.equal(knockWithSkew(now, -660_000).kind, 'nothing');
});

test('a skewed sequence is never consumed and never opens, however often it is sent', () => {
  const { catalog, tracker } = guardSide();
  const now = 1_800_000_000_000;
  const seq = deriveSequence(id, timeStep(now, 30) + 3, params);
  for (let round = 0; round < 3; round++) {
    let out: KnockOutcome[] = [];
    for (const [i, step] of seq.entries()) out = tracker.knock('198.18.0.10', step, now + round * 500 + i);
    assert.deepEqual(
      out.map((o) => o.kind),
      ['skewed'],
    );
    assert.equal(catalog.skewSeconds(out[0]!.seq, now), 90);
  }
  assert.equal(catalog.usedCount, 0);
});

test('the clock-skew line is due once per key per interval, and the table stays bounded', () => {
  const once = new OncePer(SKEW_LOG_INTERVAL_MS, 2);
  assert.equal(once.due('a alice', 0), true);
  assert.equal(once.due('a alice', 1000), false);
  assert.equal(once.due('a alice', SKEW_LOG_INTERVAL_MS - 1), false);
  assert.equal(once.due('b alice', 1000), true, 'another source');
  assert.equal(once.due('a alice', SKEW_LOG_INTERVAL_MS), true);
  // Two keys at most: a third forgets the oldest ('b alice'), which is then due again.
  assert.equal(once.due('c alice', SKEW_LOG_INTERVAL_MS), true);
  assert.equal(once.due('b alice', SKEW_LOG_INTERVAL_MS + 1), true);
  assert.equal(once.due('c alice', SKEW_LOG_INTERVAL_MS + 2), false);
});

test('where sequences share a first port, the ones that open come first and still open', () => {
  // Four ports, three clients, 41 steps each: every port starts many sequences.
  const tight = { portMin: 40000, portMax: 40003, length: 2, stepSeconds: 30 };
  // Fixed secrets (and a fixed time): how many sequences share a port is then the same on every
  // run (with random ones a port sometimes started 8 or fewer, and the premise failed).
  const clients = ['alice', 'bob', 'carol'].map((name) => ({
    name,
    secret: createHash('sha256').update(`knock-skew ${name}`).digest('base64url'),
  }));
  const config = parseGuardConfig('guard.json', {
    kind: 'guard',
    gateway: 'gw1',
    rotating: { ...tight, clients },
  });
  const now = 1_800_000_000_000;
  const step = timeStep(now, 30);
  for (const client of clients) {
    for (const s of [step - 1, step, step + 1]) {
      const catalog = new SequenceCatalog(config);
      const tracker = new KnockTracker(catalog, { timeoutMs: 2000, maxSources: 64 });
      const seq = deriveSequence({ gateway: 'gw1', client: client.name, secret: client.secret }, s, tight);
      const list = catalog.startingWith(seq[0]!, now);
      assert.ok(list.length > 8, `${list.length} sequences start at ${seq[0]!.port}`);
      const firstDiagnostic = list.findIndex((q) => q.diagnostic === true);
      assert.ok(
        list.slice(firstDiagnostic).every((q) => q.diagnostic === true),
        'opening ones first',
      );
      tracker.knock('198.18.0.10', seq[0]!, now);
      const out = tracker.knock('198.18.0.10', seq[1]!, now + 30);
      assert.equal(out.find((o) => o.kind === 'opened' || o.kind === 'skewed')?.kind, 'opened');
    }
  }
});
