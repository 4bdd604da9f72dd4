// The guard's journal of spent SPA packets and rotating steps (knock/guard-state.ts): what a
// restart reads back, what it drops, and what the gate and the catalog do with it.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseGuardConfig } from '../../config/knock.js';
import { SequenceCatalog } from '../../knock/catalog.js';
import { GuardStateFile, parseGuardState, type GuardStateRecord } from '../../knock/guard-state.js';
import { deriveSequence, newKnockSecret, timeStep } from '../../knock/rotating.js';
import { SpaGate } from '../../knock/spa-gate.js';
import { encodeSpa } from '../../knock/spa.js';
import { ALICE, spaGateConfig, spaKeyOf } from '../helpers/spa-keys.js';

const NOW = Date.UTC(2026, 11, 4, 12, 0, 0);
const DIGEST = 'a'.repeat(64);

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'guard-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the journal keeps the live records, the latest expiry of each, oldest first', () => {
  const text = [
    'nonstop-guard-state 1',
    `spa ${NOW + 5000} ${DIGEST}`,
    `knock ${NOW - 1} alice@100`,
    `knock ${NOW + 1000} alice@101`,
    `spa ${NOW + 9000} ${DIGEST}`,
    `early ${NOW + 3000} ${'b'.repeat(64)}`,
    '',
  ].join('\n');
  const load = parseGuardState(text, NOW);
  assert.equal(load.lost, undefined);
  assert.equal(load.tornTail, false);
  assert.deepEqual(load.records, [
    { kind: 'knock', key: 'alice@101', untilMs: NOW + 1000 },
    { kind: 'early', key: 'b'.repeat(64), untilMs: NOW + 3000 },
    { kind: 'spa', key: DIGEST, untilMs: NOW + 9000 },
  ]);
});

test('a last line cut short is dropped; any other unreadable line means the record is lost', () => {
  const head = `nonstop-guard-state 1\nknock ${NOW + 1000} alice@101\n`;
  const torn = parseGuardState(`${head}spa ${NOW + 10_000} ${DIGEST.slice(0, 9)}`, NOW);
  assert.equal(torn.lost, undefined);
  assert.equal(torn.tornTail, true);
  assert.equal(torn.records.length, 1);
  // A crash during the very first write, and an empty file: nothing was spent yet.
  assert.equal(parseGuardState('nonstop-gua', NOW).lost, undefined);
  assert.equal(parseGuardState('', NOW).lost, undefined);

  for (const [text, why] of [
    [`${head}spa soon ${DIGEST}\n`, /line 3/],
    [`${head}open ${NOW + 1} ${DIGEST}\n`, /line 3/],
    [`${head}spa ${NOW + 1} ${DIGEST} extra\n`, /line 3/],
    [`${head}spa ${NOW + 1} not/a/key\n`, /line 3/],
    [`nonstop-guard-state 2\n`, /line 1/],
    ['{"json": true}', /header/],
  ] as const) {
    const load = parseGuardState(text, NOW);
    assert.match(load.lost ?? '', why, text);
    assert.deepEqual(load.records, []);
  }
});

test('what was flushed is read back after a restart; an unreadable file is kept aside', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'state');
  const live: GuardStateRecord[] = [];
  const first = await GuardStateFile.open(path, NOW, () => live);
  assert.equal(first.existed, false);
  const r: GuardStateRecord = { kind: 'spa', key: DIGEST, untilMs: NOW + 60_000 };
  first.file.record(r);
  assert.equal(first.file.pending, 1);
  await first.file.flush();
  assert.equal(first.file.pending, 0);
  await first.file.close();
  // A crash in the middle of the next append.
  writeFileSync(path, readFileSync(path, 'utf8') + 'knock 17', { flag: 'w' });

  const second = await GuardStateFile.open(path, NOW + 1000, () => []);
  t.after(() => second.file.close());
  assert.equal(second.existed, true);
  assert.equal(second.load.tornTail, true);
  assert.deepEqual(second.load.records, [r]);
  // Rewritten at start: the torn line is gone, the live one stays.
  assert.equal(readFileSync(path, 'utf8'), `nonstop-guard-state 1\nspa ${r.untilMs} ${DIGEST}\n`);
  await second.file.close();

  writeFileSync(path, 'nonstop-guard-state 1\ngarbage\n');
  const third = await GuardStateFile.open(path, NOW, () => []);
  await third.file.close();
  assert.match(third.load.lost ?? '', /line 2/);
  assert.equal(readFileSync(`${path}.unreadable`, 'utf8'), 'nonstop-guard-state 1\ngarbage\n');
  assert.equal(readFileSync(path, 'utf8'), 'nonstop-guard-state 1\n');
});

test('the journal is rewritten with the live records once the dead ones dominate', async (t) => {
  const path = join(tempDir(t), 'state');
  const live: GuardStateRecord[] = [];
  const { file } = await GuardStateFile.open(path, NOW, () => live);
  t.after(() => file.close());
  for (let i = 0; i < 5000; i++) file.record({ kind: 'knock', key: `alice@${i}`, untilMs: NOW + i });
  live.push({ kind: 'knock', key: 'alice@4999', untilMs: NOW + 4999 });
  await file.flush();
  assert.equal(readFileSync(path, 'utf8'), `nonstop-guard-state 1\nknock ${NOW + 4999} alice@4999\n`);
  file.record({ kind: 'knock', key: 'bob@1', untilMs: NOW + 1 });
  await file.flush();
  assert.match(readFileSync(path, 'utf8'), /bob@1\n$/);
  assert.equal(existsSync(`${path}.tmp`), false);
});

function spaGate(journal?: (r: GuardStateRecord) => void): SpaGate {
  return new SpaGate(spaGateConfig(), 22, 30, journal);
}
const spa = (atMs: number) =>
  encodeSpa({ username: 'ops', accessAddress: '0.0.0.0', access: 'tcp/22' }, spaKeyOf(ALICE), atMs);

test('an SPA packet used before a restart is a replay after it; a future one stays refused', () => {
  const journal: GuardStateRecord[] = [];
  const before = spaGate((r) => journal.push(r));
  const used = spa(NOW);
  const early = spa(NOW + 90_000);
  assert.equal(before.check('198.51.100.7', used, NOW).kind, 'opened');
  assert.equal(before.check('198.51.100.7', early, NOW).kind, 'refused');
  assert.deepEqual(
    journal.map((r) => r.kind),
    ['spa', 'early'],
  );
  assert.deepEqual(before.records(NOW + 1), journal);

  const after = spaGate();
  after.restore(journal);
  const replay = after.check('203.0.113.9', used, NOW + 5000);
  assert.equal(replay.kind === 'refused' && replay.reason, 'replay');
  const late = after.check('203.0.113.9', early, NOW + 80_000);
  assert.equal(late.kind === 'refused' && late.reason, 'replay');
  // Without the journal the same packet opens again: what the file is for.
  assert.equal(spaGate().check('203.0.113.9', used, NOW + 5000).kind, 'opened');
});

test('a journal with more early digests than the gate holds restores the latest-expiring ones', () => {
  const held = 4096;
  const records: GuardStateRecord[] = Array.from({ length: held + 10 }, (_, i) => ({
    kind: 'early',
    key: i.toString(16).padStart(64, '0'),
    untilMs: NOW + 60_000 + i,
  }));
  const g = spaGate();
  g.restore(records);
  const early = g.records(NOW).filter((r) => r.kind === 'early');
  assert.equal(early.length, held);
  assert.equal(Math.min(...early.map((r) => r.untilMs)), NOW + 60_000 + 10);
});

test('with the record lost, every packet that could have been used is refused, then new ones open', () => {
  const g = spaGate();
  g.refuseEarlierPackets(NOW);
  for (const at of [NOW - 60_000, NOW, NOW + 30_000]) {
    const o = g.check('198.51.100.7', spa(at), NOW + 1000);
    assert.equal(o.kind === 'refused' && o.reason, 'replay', `stamped ${at - NOW} ms`);
  }
  // A client with a right clock is back once clockSkewSeconds have passed.
  assert.equal(g.check('198.51.100.7', spa(NOW + 31_000), NOW + 31_000).kind, 'opened');
});

const params = { portMin: 20000, portMax: 29999, length: 4, stepSeconds: 30 };
const secret = newKnockSecret();
const guardConfig = parseGuardConfig('guard.json', {
  kind: 'guard',
  gateway: 'gw1',
  rotating: { ...params, clients: [{ name: 'alice', secret }] },
});
const sequenceAt = (catalog: SequenceCatalog, step: number, now: number) => {
  const first = deriveSequence({ gateway: 'gw1', client: 'alice', secret }, step, params)[0]!;
  return catalog.startingWith(first, now).find((q) => q.id === `alice@${step}`);
};

test('a rotating step spent before a restart stays spent after it, until it cannot be valid', () => {
  const journal: GuardStateRecord[] = [];
  const before = new SequenceCatalog(guardConfig, (r) => journal.push(r));
  const step = timeStep(NOW, 30);
  before.consume(sequenceAt(before, step, NOW)!, NOW);
  assert.deepEqual(journal, [{ kind: 'knock', key: `alice@${step}`, untilMs: (step + 2) * 30_000 }]);
  assert.deepEqual(before.records(NOW), journal);

  const after = new SequenceCatalog(guardConfig);
  after.restore(journal);
  assert.equal(sequenceAt(after, step, NOW + 1000), undefined, 'not offered again');
  assert.ok(sequenceAt(after, step + 1, NOW + 1000), 'the next step is');
  // Without the journal it would open again.
  assert.ok(sequenceAt(new SequenceCatalog(guardConfig), step, NOW + 1000));
});

test('with the record lost, every step that could have been spent is, for every client', () => {
  const catalog = new SequenceCatalog(guardConfig);
  const step = timeStep(NOW, 30);
  const offered = sequenceAt(catalog, step, NOW)!;
  catalog.spendEarlierSteps(NOW);
  assert.equal(catalog.isValid(offered, NOW), false);
  for (const s of [step - 1, step, step + 1]) assert.equal(sequenceAt(catalog, s, NOW), undefined);
  const later = NOW + 60_000;
  assert.ok(sequenceAt(catalog, step + 2, later), 'two steps on, knocks open again');
});
