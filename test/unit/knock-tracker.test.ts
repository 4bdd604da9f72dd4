import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KnockStep } from '../../config/knock.js';
import { KnockTracker, type Sequence, type SequenceSource } from '../../knock/tracker.js';

const tcp = (port: number): KnockStep => ({ port, protocol: 'tcp' });
const udp = (port: number): KnockStep => ({ port, protocol: 'udp' });

function source(...sequences: Sequence[]): SequenceSource & { invalid: Set<string> } {
  const invalid = new Set<string>();
  return {
    invalid,
    startingWith: (step) =>
      sequences.filter((s) => s.steps[0]!.port === step.port && s.steps[0]!.protocol === step.protocol),
    isValid: (seq) => !invalid.has(seq.id),
  };
}

const ops: Sequence = {
  id: 'static:ops',
  name: 'ops',
  kind: 'static',
  steps: [tcp(7000), udp(8000), tcp(9000)],
};

function tracker(...sequences: Sequence[]) {
  const src = source(...(sequences.length > 0 ? sequences : [ops]));
  return { src, t: new KnockTracker(src, { timeoutMs: 1000, maxSources: 16 }) };
}

const kinds = (outcomes: { kind: string }[]) => outcomes.map((o) => o.kind);

test('the steps in order open, and only for that source', () => {
  const { t } = tracker();
  assert.deepEqual(t.knock('a', tcp(7000), 0), []);
  assert.deepEqual(t.knock('b', udp(8000), 1), []);
  assert.deepEqual(t.knock('a', udp(8000), 2), []);
  const out = t.knock('a', tcp(9000), 3);
  assert.deepEqual(kinds(out), ['opened']);
  assert.equal(out[0]!.source, 'a');
  assert.equal(t.size, 0, 'a is forgotten after success; b never started');
});

test('the protocol is part of the step', () => {
  const { t } = tracker();
  t.knock('a', tcp(7000), 0);
  assert.deepEqual(kinds(t.knock('a', tcp(8000), 1)), ['failed']);
});

test('wrong order and a wrong port between steps reset the attempt', () => {
  const { t } = tracker();
  assert.deepEqual(t.knock('a', tcp(9000), 0), [], 'not a first step: nothing tracked');
  assert.equal(t.size, 0);
  t.knock('a', tcp(7000), 1);
  assert.deepEqual(kinds(t.knock('a', tcp(25000), 2)), ['failed']);
  assert.deepEqual(t.knock('a', udp(8000), 3), []);
  assert.deepEqual(t.knock('a', tcp(9000), 4), [], 'the reset attempt cannot complete');
});

test('a wrong port that is itself a first step starts a new attempt', () => {
  const { t } = tracker();
  t.knock('a', tcp(7000), 0);
  t.knock('a', udp(8000), 1);
  assert.deepEqual(kinds(t.knock('a', tcp(7000), 2)), ['failed']);
  t.knock('a', udp(8000), 3);
  assert.deepEqual(kinds(t.knock('a', tcp(9000), 4)), ['opened']);
});

test('a duplicate of the step just matched is tolerated, an older one is not', () => {
  const { t } = tracker();
  t.knock('a', tcp(7000), 0);
  assert.deepEqual(t.knock('a', tcp(7000), 1), []);
  t.knock('a', udp(8000), 2);
  assert.deepEqual(t.knock('a', udp(8000), 3), []);
  assert.deepEqual(kinds(t.knock('a', tcp(9000), 4)), ['opened']);

  t.knock('b', tcp(7000), 10);
  t.knock('b', udp(8000), 11);
  assert.deepEqual(kinds(t.knock('b', tcp(7000), 12)), ['failed'], 'two steps back is a wrong port');
});

test('the whole sequence must finish within the timeout', () => {
  const { t } = tracker();
  t.knock('a', tcp(7000), 0);
  t.knock('a', udp(8000), 500);
  assert.deepEqual(kinds(t.knock('a', tcp(9000), 1001)), ['expired']);
  t.knock('b', tcp(7000), 0);
  t.knock('b', udp(8000), 500);
  assert.deepEqual(kinds(t.knock('b', tcp(9000), 1000)), ['opened'], 'exactly at the limit still counts');
});

test('sweep expires silent attempts and forgets their sources', () => {
  const { t } = tracker();
  t.knock('a', tcp(7000), 0);
  t.knock('b', tcp(7000), 900);
  const out = t.sweep(1500);
  assert.deepEqual(
    out.map((o) => [o.kind, o.source]),
    [['expired', 'a']],
  );
  assert.equal(t.size, 1);
});

test('an attempt whose sequence became invalid expires', () => {
  const { t, src } = tracker();
  t.knock('a', tcp(7000), 0);
  src.invalid.add('static:ops');
  assert.deepEqual(kinds(t.knock('a', udp(8000), 1)), ['expired']);
});

test('tracked sources are capped; the least recently seen is evicted', () => {
  const { t } = tracker();
  for (let i = 0; i < 100; i++) t.knock(`s${i}`, tcp(7000), i);
  assert.equal(t.size, 16);
  assert.equal(t.evicted, 84);
  // s84 was touched, so s85 is now the oldest and goes first.
  t.knock('s84', udp(8000), 200);
  t.knock('new', tcp(7000), 201);
  t.knock('s84', tcp(9000), 202);
  assert.equal(t.size, 15);
  assert.deepEqual(t.knock('s85', udp(8000), 203), [], 's85 was evicted: its progress is gone');
});

test('several sequences sharing a first step are followed side by side', () => {
  const other: Sequence = { id: 'static:b', name: 'b', kind: 'static', steps: [tcp(7000), tcp(9100)] };
  const { t } = tracker(ops, other);
  t.knock('a', tcp(7000), 0);
  const out = t.knock('a', tcp(9100), 1);
  assert.deepEqual(kinds(out), ['failed', 'opened']);
  assert.equal(out[1]!.seq.name, 'b');
});

test('the addresses of one IPv6 /64 share one state and cannot evict other sources', () => {
  const { t } = tracker();
  t.knock('198.18.0.1', tcp(7000), 0);
  t.knock('2001:db8:0:9::1', tcp(7000), 0);
  for (let i = 0; i < 10_000; i++)
    t.knock(
      `2001:db8:0:1:${((i >> 16) & 0xffff).toString(16)}:${(i & 0xffff).toString(16)}::1`,
      tcp(7000),
      1,
    );
  assert.equal(t.size, 3, 'one state for the whole /64');
  assert.equal(t.evicted, 0);
  // The others' progress survived.
  assert.deepEqual(t.knock('198.18.0.1', udp(8000), 2), []);
  assert.deepEqual(kinds(t.knock('198.18.0.1', tcp(9000), 3)), ['opened']);
  t.knock('2001:db8:0:9::1', udp(8000), 4);
  const out = t.knock('2001:db8:0:9::1', tcp(9000), 5);
  assert.deepEqual(kinds(out), ['opened']);
  assert.equal(out[0]!.source, '2001:db8:0:9::1', 'the window is for the address that knocked');
});

test('IPv4-mapped IPv6 is the IPv4 source; the prefix length is configurable', () => {
  const { t } = tracker();
  t.knock('::ffff:198.18.0.1', tcp(7000), 0);
  t.knock('198.18.0.1', udp(8000), 1);
  assert.deepEqual(kinds(t.knock('::ffff:198.18.0.1', tcp(9000), 2)), ['opened']);
  const per128 = new KnockTracker(source(ops), { timeoutMs: 1000, maxSources: 16, ipv6PrefixLength: 128 });
  per128.knock('2001:db8::1', tcp(7000), 0);
  per128.knock('2001:db8::2', tcp(7000), 0);
  assert.equal(per128.size, 2, 'per address at /128');
});

test('a sweep reports an expired IPv6 state under the address that knocked last', () => {
  const { t } = tracker();
  t.knock('2001:db8::7', tcp(7000), 0);
  const out = t.sweep(5000);
  assert.deepEqual(kinds(out), ['expired']);
  assert.equal(out[0]!.source, '2001:db8::7');
  assert.equal(t.size, 0);
});
