// How much a WAN may disturb a knock sequence before the guard's tracker refuses it: every
// order of a four-step sequence (the length of the world's and the default rotating ones), every
// duplicated step, every lost step, and the timeout, measured on knock/tracker.ts itself.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KnockStep } from '../../config/knock.js';
import { KnockTracker, type Sequence } from '../../knock/tracker.js';

const STEPS: readonly KnockStep[] = [
  { port: 21001, protocol: 'tcp' },
  { port: 22002, protocol: 'tcp' },
  { port: 23003, protocol: 'udp' },
  { port: 24004, protocol: 'tcp' },
];
const SEQ: Sequence = { id: 'static:wan', name: 'wan', kind: 'static', steps: STEPS };
const TIMEOUT_MS = 10_000;

/** Feeds the knocks `gapMs` apart from one source; true when they opened the port. */
function opens(knocks: readonly KnockStep[], gapMs = 30): boolean {
  const t = new KnockTracker(
    {
      startingWith: (step) =>
        SEQ.steps[0]!.port === step.port && SEQ.steps[0]!.protocol === step.protocol ? [SEQ] : [],
      isValid: () => true,
    },
    { timeoutMs: TIMEOUT_MS, maxSources: 16 },
  );
  return knocks.some((k, i) => t.knock('198.18.0.20', k, i * gapMs).some((o) => o.kind === 'opened'));
}

function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

test('of the 24 orders of a four-step sequence only the sent one opens', () => {
  const orders = permutations(STEPS);
  assert.equal(orders.length, 24);
  const opening = orders.filter((o) => opens(o));
  assert.deepEqual(opening, [STEPS]);
});

test('a duplicate survives right after its own step (a retransmitted SYN), nowhere later', () => {
  for (let i = 0; i < STEPS.length; i++) {
    const repeated = [...STEPS.slice(0, i + 1), STEPS[i]!, ...STEPS.slice(i + 1)];
    assert.ok(opens(repeated), `step ${i + 1} repeated at once`);
  }
  // An earlier step arriving again after a later one (a duplicate that was held back) fails,
  // unless it is the first step: then it starts the sequence afresh, and the rest must follow.
  const late = [STEPS[0]!, STEPS[1]!, STEPS[2]!, STEPS[1]!, STEPS[3]!];
  assert.equal(opens(late), false);
});

test('any lost step fails the attempt; sending it all again opens', () => {
  for (let i = 0; i < STEPS.length; i++) {
    const lost = STEPS.filter((_, j) => j !== i);
    assert.equal(opens(lost), false, `step ${i + 1} lost`);
    assert.ok(opens([...lost, ...STEPS]), `step ${i + 1} lost, then the sequence again`);
  }
});

test('the timeout is for the whole sequence from its first knock, not per step', () => {
  const gap = TIMEOUT_MS / (STEPS.length - 1);
  assert.ok(opens(STEPS, gap), 'the last step exactly at the timeout');
  assert.equal(opens(STEPS, gap + 1), false, 'one millisecond per step over, in total 3 ms late');
});
