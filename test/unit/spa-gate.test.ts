// The guard's decision on one SPA datagram (knock/spa-gate.ts), driven with fixed keys and a
// fixed clock: what opens, for whom and how long, and why everything else opens nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GuardSpaConfig } from '../../config/schemas/guard.js';
import { SpaGate } from '../../knock/spa-gate.js';
import { encodeSpa, type SpaRequest } from '../../knock/spa.js';
import { ALICE, NAT, spaGateConfig, spaKeyOf, type SpaClientKeys } from '../helpers/spa-keys.js';

const NOW = Date.UTC(2026, 11, 3, 12, 0, 0);
const SOURCE = '198.51.100.7';

function gate(overrides: Partial<GuardSpaConfig> = {}): SpaGate {
  return new SpaGate(spaGateConfig(overrides), 22, 30);
}

const packet = (fields: Partial<SpaRequest> = {}, who: SpaClientKeys = ALICE, atMs = NOW) =>
  encodeSpa({ username: 'ops', accessAddress: '0.0.0.0', access: 'tcp/22', ...fields }, spaKeyOf(who), atMs);

test('a fresh packet opens SSH for the address it came from, for the window', () => {
  const o = gate().check(SOURCE, packet(), NOW);
  assert.equal(o.kind, 'opened');
  assert.equal(o.kind === 'opened' && o.address, SOURCE);
  assert.equal(o.kind === 'opened' && o.windowSeconds, 30);
  assert.equal(o.kind === 'opened' && o.client, 'alice');
  // One carrying the sender's own address is the same request; IPv6 sources are canonical.
  const g = gate();
  assert.equal(g.check(SOURCE, packet({ accessAddress: SOURCE }), NOW).kind, 'opened');
  const v6 = g.check('2001:DB8:0:0::7', packet(), NOW);
  assert.equal(v6.kind === 'opened' && v6.address, '2001:db8::7');
});

test('a client timeout shortens the window, never lengthens it', () => {
  const g = gate();
  const short = g.check(SOURCE, packet({ clientTimeoutSeconds: 10 }), NOW);
  assert.equal(short.kind === 'opened' && short.windowSeconds, 10);
  const long = g.check(SOURCE, packet({ clientTimeoutSeconds: 3600 }), NOW);
  assert.equal(long.kind === 'opened' && long.windowSeconds, 30);
});

test('a replay opens nothing, from the same source or another, until its digest has expired', () => {
  const g = gate();
  const p = packet();
  assert.equal(g.check(SOURCE, p, NOW).kind, 'opened');
  for (const from of [SOURCE, '203.0.113.9']) {
    const again = g.check(from, Buffer.from(p), NOW + 1000);
    assert.equal(again.kind, 'refused');
    assert.equal(again.kind === 'refused' && again.reason, 'replay');
  }
  assert.equal(g.remembered, 1);
  // By the time the digest is forgotten, the packet itself is too old to be accepted.
  g.sweep(NOW + 151_000);
  assert.equal(g.remembered, 0);
  const late = g.check(SOURCE, p, NOW + 151_000);
  assert.equal(late.kind === 'refused' && late.reason, 'stale');
});

test('too old or too far ahead: refused, saying by how much', () => {
  const g = gate();
  const old = g.check(SOURCE, packet({}, ALICE, NOW - 121_000), NOW);
  assert.equal(old.kind === 'refused' && old.reason, 'stale');
  assert.equal(old.kind === 'refused' && old.skewSeconds, -121);
  assert.equal(g.check(SOURCE, packet({}, ALICE, NOW - 119_000), NOW).kind, 'opened');
  const ahead = g.check(SOURCE, packet({}, ALICE, NOW + 31_000), NOW);
  assert.equal(ahead.kind === 'refused' && ahead.reason, 'future');
  assert.equal(ahead.kind === 'refused' && ahead.skewSeconds, 31);
  assert.equal(g.check(SOURCE, packet({}, ALICE, NOW + 29_000), NOW).kind, 'opened');
});

test('a packet refused as from the future cannot be used once its time has come', () => {
  const g = gate();
  const early = packet({}, ALICE, NOW + 60_000);
  assert.equal(g.check(SOURCE, early, NOW).kind, 'refused');
  // 31 s later its timestamp is within the skew: a recorded copy would now pass the clock check.
  g.sweep(NOW + 31_000);
  const later = g.check('203.0.113.9', early, NOW + 31_000);
  assert.equal(later.kind === 'refused' && later.reason, 'replay');
  // Remembered until it is too old anyway, then forgotten.
  g.sweep(NOW + 181_000);
  assert.equal(g.remembered, 0);
});

test('a packet asking for another port, or for more than SSH, opens nothing', () => {
  const g = gate();
  for (const access of ['tcp/2222', 'udp/22', 'tcp/22,tcp/80']) {
    const o = g.check(SOURCE, packet({ access }), NOW);
    assert.equal(o.kind === 'refused' && o.reason, 'access', access);
  }
});

test('whose window opens: the sender, unless the client is one that names the address', () => {
  const g = gate();
  const elsewhere = g.check(SOURCE, packet({ accessAddress: '203.0.113.50' }), NOW);
  assert.equal(elsewhere.kind === 'refused' && elsewhere.reason, 'address');
  const nat = g.check(SOURCE, packet({ accessAddress: '203.0.113.50' }, NAT), NOW);
  assert.equal(nat.kind === 'opened' && nat.address, '203.0.113.50');
  const unnamed = g.check(SOURCE, packet({}, NAT), NOW);
  assert.equal(unnamed.kind === 'refused' && unnamed.reason, 'address');
});

test('garbage, a tampered byte or an unknown key: unauthenticated, nothing about the sender', () => {
  const g = gate();
  const p = packet();
  for (const i of [0, 10, Math.floor(p.length / 2), p.length - 1]) {
    const t = Buffer.from(p);
    t[i] = t[i] === 0x41 ? 0x42 : 0x41;
    const o = g.check(SOURCE, t, NOW);
    assert.equal(o.kind, 'unauthenticated', `byte ${i}`);
  }
  assert.equal(g.check(SOURCE, Buffer.from('hello'), NOW).kind, 'unauthenticated');
  const stranger = {
    name: 'eve',
    key: Buffer.alloc(32, 7).toString('base64'),
    hmacKey: Buffer.alloc(64, 9).toString('base64'),
  };
  const o = g.check(SOURCE, packet({}, stranger), NOW);
  assert.equal(o.kind === 'unauthenticated' && o.reason, 'hmac');
  assert.equal(g.remembered, 0, 'nothing unauthenticated is remembered');
});

test("the right HMAC key with the wrong encryption key is refused as that client's", () => {
  const mixed = { ...ALICE, key: NAT.key };
  const o = gate().check(SOURCE, packet({}, mixed), NOW);
  assert.equal(o.kind, 'refused');
  assert.equal(o.kind === 'refused' && o.client, 'alice');
  assert.equal(o.kind === 'refused' && o.reason, 'decrypt');
});

test('with the replay cache full, new packets are refused rather than an old digest forgotten', () => {
  const g = gate({ replayCacheSize: 2 });
  assert.equal(g.check(SOURCE, packet(), NOW).kind, 'opened');
  assert.equal(g.check(SOURCE, packet(), NOW).kind, 'opened');
  const third = g.check(SOURCE, packet(), NOW);
  assert.equal(third.kind === 'refused' && third.reason, 'replay-cache-full');
  g.sweep(NOW + 151_000);
  assert.equal(g.check(SOURCE, packet({}, ALICE, NOW + 151_000), NOW + 151_000).kind, 'opened');
});
