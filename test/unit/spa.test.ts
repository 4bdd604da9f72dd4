// The SPA codec without a network: packets the real fwknop 2.6.10 client made (pasted below),
// round trips, every tampered byte, garbage, key files and the replay cache.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { isNonstopError } from '../../lib/errors.js';
import {
  decodeSpa,
  encodeSpa,
  formatSpaKeyFile,
  generateSpaKeys,
  parseSpaKeyFile,
  sealSpaPlaintext,
  type SpaDecodeResult,
  type SpaKey,
} from '../../knock/spa.js';
import { SpaReplayCache, spaReplayLifetimeMs } from '../../knock/spa-replay.js';

// Two outputs of `fwknop --key-gen`.
const ALICE_FILE =
  'KEY_BASE64: pP9HwAQKYF0T4+3AfMpDeLzgRPP0NLZ/1gk7Ho1EDgI=\n' +
  'HMAC_KEY_BASE64: F9P3vLXvcv4VCFmhp0aR6scSDEL91zTabzaG3thP0bHB/PP+2P0DxENzqEu+nroOvgauOc5qhqT1iM4vpg+qbw==\n';
const BOB_FILE =
  'KEY_BASE64: DSFYTx4AETMv38KN93dg4RihpXaj3HujBZavgn6j6Kw=\n' +
  'HMAC_KEY_BASE64: eJgC9VFPNGbLbGHRGJebAXOp5g0RA6VeFBwBz0Bw3aR4RY9av2R/QlqMBMukZUTE4z9pjWySCUEMeRs4NO51DA==\n';
const alice = parseSpaKeyFile(ALICE_FILE, 'alice');
const bob = parseSpaKeyFile(BOB_FILE, 'bob');

// fwknop -A tcp/22 -a 192.0.2.7 --use-hmac (user root), with alice's keys, at 1796305650.
const FWKNOP_ACCESS =
  '9M9vsI9/snRHuqbP5j8ZoowWc7XQqvxN7K4bXbaZqczOtBLB2T7kgahAy/VcjHNZEKoEunAxNbUFarxDY/AK02Wz2zyC+JyEGLOEMOIbyRegc7IHbL+LtpIcl/OMzM/Im8q7BVHXF2kQ0RSVlfhuEfrrO54PUaz6gzDmiBEF0dH4JpkqlWHELiVaasdZ53qj9pv2Bkf73FVg';
// fwknop -A tcp/22,udp/53 -a 192.0.2.7 -U alice -f 45 --use-hmac, at 1796305659.
const FWKNOP_TIMEOUT =
  '+GviQWz12PZl2nrtB0ovf2VcqwFVllZa94wPeQMSYSSLveZejjWx/g+eGJjlW/gS+um5tUH1/XCnlYgPuOoiU8bqU3BTxIRcXao7M52fxNVfIctXBOKLldfwKdtKWJ1TFHitP4P/AjMm4URHoF7etDlnqIxroPtGNgzBIRlCR5kMBV3lzAV8w/5i8/cl6UQelAzI1sUu6lUjToWYkzSNioAPXvQERLjck';
// fwknop -C 'echo hi' and fwknop -A tcp/22 -N 10.0.0.5,22, both with alice's keys.
const FWKNOP_COMMAND =
  '8wPoO5IwKvGN8HsjxvUw7rlX3XNcAsOh6cKpzfLcrHaS9L3ZwPpZztNQDK7pGK4fytfcAQxh6XipNhEhmWT8wr0e2ua4ygf9LQBKCb2TAvGHGVOGx+903ltIXZsYqD9gRgpP4Q+l+S1btqfb8vQZ2vN1UbdMPt+88RGIQTXkdK1mJ7VXhQ5KM3h9LhDQXGW1+qsgl0bJ3cBY';
const FWKNOP_NAT =
  '/FBpSt0js750WhJrwCV27d9yl7dL3aHcXrCZkmt5IrKRijhXBDTSR15/nwN2VXDwbrywA51KVRFm6pM4Nsl0mlV149ynqlnJ3sSHuh2hmUXXJvquUb+a+MMPmjPK4lZy7JCjw03HL2DUeZa3j//b0GXxSt6QZChea6sbbwyUK267w5alL8+aldEOC8P9n1Uz/MWFlMLU9OZ8FeAAEM30FgkAmxQH3ESEw';
const AT = { nowMs: 1796305660_000 };

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function refusal(r: SpaDecodeResult): string {
  assert.equal(r.ok, false, 'expected a refusal');
  return r.ok ? '' : r.reason;
}

function accepted(r: SpaDecodeResult) {
  assert.ok(r.ok, r.ok ? '' : `refused: ${r.reason}: ${r.detail}`);
  return r;
}

// Deterministic bytes for garbage: SHA-256 in counter mode over a fixed seed.
function fixedBytes(seed: string, n: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; out.length * 32 < n; i++) out.push(createHash('sha256').update(`${seed}:${i}`).digest());
  return Buffer.concat(out).subarray(0, n);
}

// A plaintext with a correct SHA-256 digest, for sealing crafted messages.
function signed(encoded: string): string {
  return `${encoded}:${createHash('sha256').update(encoded).digest('base64').replace(/=+$/, '')}`;
}

test("decodes the real fwknop client's packets, every field", () => {
  const a = accepted(decodeSpa(Buffer.from(FWKNOP_ACCESS), [alice], AT));
  assert.equal(a.client, 'alice');
  assert.deepEqual(a.message, {
    randomValue: '8768899819733552',
    username: 'root',
    timestamp: 1796305650,
    version: '3.0.0',
    messageType: 1,
    accessAddress: '192.0.2.7',
    access: [{ protocol: 'tcp', port: 22 }],
  });
  assert.match(a.replayDigest, /^[0-9a-f]{64}$/);
  const t = accepted(decodeSpa(Buffer.from(FWKNOP_TIMEOUT), [alice], AT));
  assert.deepEqual(t.message, {
    randomValue: '1818871346143135',
    username: 'alice',
    timestamp: 1796305659,
    version: '3.0.0',
    messageType: 3,
    accessAddress: '192.0.2.7',
    access: [
      { protocol: 'tcp', port: 22 },
      { protocol: 'udp', port: 53 },
    ],
    clientTimeoutSeconds: 45,
  });
});

test('command and NAT messages are refused as unsupported, not mis-parsed', () => {
  for (const [p, what] of [
    [FWKNOP_COMMAND, /command/],
    [FWKNOP_NAT, /NAT/],
  ] as const) {
    const r = decodeSpa(Buffer.from(p), [alice], AT);
    assert.equal(refusal(r), 'unsupported');
    assert.match(r.ok ? '' : r.detail, what);
  }
});

test('round trips: IPv4, 0.0.0.0, IPv6, several ports, client timeout', () => {
  const now = 1_800_000_000_123;
  const cases = [
    { username: 'broker1', accessAddress: '198.18.0.10', access: 'tcp/22' },
    { username: 'x', accessAddress: '0.0.0.0', access: 'tcp/22,udp/53,tcp/65535' },
    { username: 'admin user', accessAddress: '2001:db8::7', access: [{ protocol: 'udp', port: 1 }] as const },
    { username: 'b', accessAddress: '192.0.2.1', access: 'tcp/2222', clientTimeoutSeconds: 65535 },
  ];
  for (const fields of cases) {
    const packet = encodeSpa(fields, bob, now);
    const r = accepted(decodeSpa(packet, [alice, bob], { nowMs: now }));
    assert.equal(r.client, 'bob');
    const m = r.message;
    assert.equal(m.username, fields.username);
    assert.equal(m.accessAddress, fields.accessAddress);
    assert.equal(m.timestamp, 1_800_000_000);
    assert.equal(m.version, '3.0.0');
    assert.match(m.randomValue, /^[0-9]{16}$/);
    assert.equal(m.messageType, fields.clientTimeoutSeconds === undefined ? 1 : 3);
    assert.equal(m.clientTimeoutSeconds, fields.clientTimeoutSeconds);
    const access = typeof fields.access === 'string' ? fields.access : 'udp/1';
    assert.equal(m.access.map((a) => `${a.protocol}/${a.port}`).join(','), access);
  }
});

test('every tampered byte of a real packet is refused: hmac for base64, encoding for anything else', () => {
  const packet = Buffer.from(FWKNOP_ACCESS);
  for (let i = 0; i < packet.length; i++) {
    const other = Buffer.from(packet);
    other[i] = B64.charCodeAt((B64.indexOf(String.fromCharCode(packet[i]!)) + 1) % 64);
    assert.equal(refusal(decodeSpa(other, [alice], AT)), 'hmac', `position ${i}`);
    for (const bad of [0x00, 0x0a, 0x3d /* = */, 0x2d /* - */, 0xff]) {
      other[i] = bad;
      assert.equal(refusal(decodeSpa(other, [alice], AT)), 'encoding', `position ${i}, byte ${bad}`);
    }
  }
});

test('a second base64 spelling of the same HMAC bytes is refused (it would dodge a datagram digest)', () => {
  assert.ok(FWKNOP_ACCESS.endsWith('g')); // 'g' = 100000: the last two bits are unused
  const respelled = `${FWKNOP_ACCESS.slice(0, -1)}h`;
  const tag = (p: string) => Buffer.from(p.slice(-43), 'base64');
  assert.deepEqual(tag(respelled), tag(FWKNOP_ACCESS));
  const r = decodeSpa(Buffer.from(respelled), [alice], AT);
  assert.equal(refusal(r), 'hmac');
  assert.match(r.ok ? '' : r.detail, /canonical/);
});

test('truncated, extended and oversized packets are refused for their size', () => {
  const packet = Buffer.from(FWKNOP_ACCESS);
  for (let n = 0; n < packet.length; n++) {
    const reason = refusal(decodeSpa(packet.subarray(0, n), [alice], AT));
    // Cutting whole 16-byte blocks' worth of characters leaves a possible size: then the HMAC fails.
    assert.ok(reason === 'size' || reason === 'hmac', `length ${n}: ${reason}`);
  }
  assert.equal(refusal(decodeSpa(packet.subarray(0, packet.length - 1), [alice], AT)), 'size');
  assert.equal(refusal(decodeSpa(Buffer.concat([packet, Buffer.from('A')]), [alice], AT)), 'size');
  assert.equal(refusal(decodeSpa(Buffer.concat([packet, Buffer.from('\n')]), [alice], AT)), 'size');
  assert.equal(refusal(decodeSpa(Buffer.alloc(1501, 'A'), [alice], AT)), 'size');
  assert.equal(refusal(decodeSpa(Buffer.alloc(65507, 'A'), [alice], AT)), 'size');
  assert.equal(refusal(decodeSpa(Buffer.alloc(0), [alice], AT)), 'size');
  // fwknopd's own guard against a replay with the stripped prefix put back.
  assert.notEqual(decodeSpa(Buffer.from(`U2FsdGVkX1${FWKNOP_ACCESS}`), [alice], AT).ok, true);
});

test('garbage from fixed seeds is refused, by size, alphabet or HMAC, and never throws', () => {
  const reasons = new Map<string, number>();
  for (let i = 0; i < 5000; i++) {
    const len = fixedBytes(`len${i}`, 2).readUInt16BE(0) % 1600;
    const r = decodeSpa(fixedBytes(`bytes${i}`, len), [alice, bob], AT);
    reasons.set(refusal(r), (reasons.get(refusal(r)) ?? 0) + 1);
  }
  assert.deepEqual([...reasons.keys()].sort(), ['encoding', 'size']);
  // Base64 text of every length an SPA packet can have gets as far as the HMAC and no further.
  for (let len = 150; len <= 450; len++) {
    const text = Buffer.from([...fixedBytes(`b64${len}`, len)].map((b) => B64.charCodeAt(b % 64)));
    const reason = refusal(decodeSpa(text, [alice, bob], AT));
    assert.ok(reason === 'size' || reason === 'hmac', `length ${len}: ${reason}`);
  }
  assert.equal(refusal(decodeSpa(Buffer.from(FWKNOP_ACCESS), [], AT)), 'hmac');
});

test('a wrong key is refused at the HMAC, before decryption', () => {
  const packet = Buffer.from(FWKNOP_ACCESS);
  assert.equal(refusal(decodeSpa(packet, [bob], AT)), 'hmac');
  // Right encryption key, wrong HMAC key: refused at the HMAC although it would decrypt.
  const rightAes: SpaKey = { name: 'm', encryptionKey: alice.encryptionKey, hmacKey: bob.hmacKey };
  assert.equal(refusal(decodeSpa(packet, [rightAes], AT)), 'hmac');
  // Right HMAC key, wrong encryption key: only now is decryption tried, and it fails.
  const rightHmac: SpaKey = { name: 'm', encryptionKey: bob.encryptionKey, hmacKey: alice.hmacKey };
  assert.equal(refusal(decodeSpa(packet, [rightHmac], AT)), 'decrypt');
});

test("two clients' keys: each packet is attributed to the client whose key authenticates it", () => {
  const now = 1_800_000_000_000;
  const fromAlice = encodeSpa({ username: 'a', accessAddress: '192.0.2.1', access: 'tcp/22' }, alice, now);
  const fromBob = encodeSpa({ username: 'a', accessAddress: '192.0.2.1', access: 'tcp/22' }, bob, now);
  for (const keys of [
    [alice, bob],
    [bob, alice],
  ]) {
    assert.equal(accepted(decodeSpa(fromAlice, keys, { nowMs: now })).client, 'alice');
    assert.equal(accepted(decodeSpa(fromBob, keys, { nowMs: now })).client, 'bob');
  }
});

test('packet age: refused outside [now - maxAge, now + skew]', () => {
  const p = Buffer.from(FWKNOP_ACCESS); // stamped 1796305650
  const at = (s: number, o = {}) => decodeSpa(p, [alice], { nowMs: s * 1000, ...o });
  assert.ok(at(1796305650 + 120).ok);
  assert.equal(refusal(at(1796305650 + 121)), 'age');
  assert.ok(at(1796305650 - 120).ok);
  assert.equal(refusal(at(1796305650 - 121)), 'age');
  assert.equal(refusal(at(1796305650 + 11, { maxAgeSeconds: 10 })), 'age');
  assert.equal(refusal(at(1796305650 - 6, { skewSeconds: 5 })), 'age');
});

test('authenticated plaintexts that are not strict access requests are refused as format, digest or unsupported', () => {
  const ts = 1796305650;
  const good = `1234567890123456:${b64('bob')}:${ts}:3.0.0:1:${b64('192.0.2.7,tcp/22')}`;
  assert.ok(decodeSpa(sealSpaPlaintext(signed(good), alice), [alice], AT).ok);
  const cases: [string, string][] = [
    [signed(`1234567890123456:${b64('bob')}:${ts}:3.0.0:1:${b64('192.0.2.7,icmp/0')}`), 'format'],
    [signed(`1234567890123456:${b64('bob')}:${ts}:3.0.0:1:${b64('192.0.2.7,tcp/0')}`), 'format'],
    [signed(`1234567890123456:${b64('bob')}:${ts}:3.0.0:1:${b64('192.0.2.7,tcp/65536')}`), 'format'],
    [signed(`1234567890123456:${b64('bob')}:${ts}:3.0.0:1:${b64('192.0.2.7,')}`), 'format'],
    [signed(`1234567890123456:${b64('bob')}:${ts}:3.0.0:1:${b64('999.0.2.7,tcp/22')}`), 'format'],
    [signed(`1234567890123456:${b64('bob')}:${ts}:3.0.0:1:${b64('fe80::1%eth0,tcp/22')}`), 'format'],
    [signed(`1234567890123456:${b64('b/b')}:${ts}:3.0.0:1:${b64('192.0.2.7,tcp/22')}`), 'format'],
    [signed(`1234567890123456:${b64('bob')}=:${ts}:3.0.0:1:${b64('192.0.2.7,tcp/22')}`), 'format'],
    [signed(`1234567890123456:${b64('bob')}:-5:3.0.0:1:${b64('192.0.2.7,tcp/22')}`), 'format'],
    [signed(`1234567890123456:${b64('bob')}:${ts}:3.0.0:3:${b64('192.0.2.7,tcp/22')}`), 'format'],
    [signed(`1234567890123456:${b64('bob')}:${ts}:3.0.0:3:${b64('192.0.2.7,tcp/22')}:0`), 'format'],
    [signed(`1234567890123456:${b64('bob')}:${ts}:3.0.0:1:${b64('192.0.2.7,tcp/22')}:${b64('x')}`), 'format'],
    [signed(`1234567890123456:${b64('bob')}:${ts}:3.0.0:9:${b64('192.0.2.7,tcp/22')}`), 'format'],
    [signed(`1234567890123456:${b64('bob')}:${ts}:3.0.0:2:${b64('192.0.2.7,tcp/22')}:x`), 'unsupported'],
    [signed(`123456789012345x:${b64('bob')}:${ts}:3.0.0:1:${b64('192.0.2.7,tcp/22')}`), 'decrypt'],
    [signed(`12345678901234567:${b64('bob')}:${ts}:3.0.0:1:${b64('192.0.2.7,tcp/22')}`), 'decrypt'],
    [signed(`1234567890123456:${b64('bob')}:${ts}:3.0.0:1:${b64('192.0.2.7,tcp/22')}\u0001`), 'format'],
    [`${good}:${'A'.repeat(43)}`, 'digest'],
    [`${good}:${createHash('md5').update(good).digest('base64').replace(/=+$/, '')}`, 'unsupported'],
    [`${good}:short`, 'format'],
  ];
  for (const [plaintext, reason] of cases) {
    assert.equal(refusal(decodeSpa(sealSpaPlaintext(plaintext, alice), [alice], AT)), reason, plaintext);
  }
});

test('the replay digest is over the plaintext: the same message sealed again is the same digest', () => {
  const first = accepted(decodeSpa(Buffer.from(FWKNOP_ACCESS), [alice], AT));
  const m = first.message;
  const encoded = `${m.randomValue}:${b64(m.username)}:${m.timestamp}:${m.version}:1:${b64('192.0.2.7,tcp/22')}`;
  const resealed = sealSpaPlaintext(signed(encoded), alice, Buffer.from('saltsalt'));
  assert.notEqual(resealed.toString(), FWKNOP_ACCESS);
  assert.equal(accepted(decodeSpa(resealed, [alice], AT)).replayDigest, first.replayDigest);
  const fields = { username: 'a', accessAddress: '192.0.2.1', access: 'tcp/22' };
  const one = accepted(decodeSpa(encodeSpa(fields, alice, AT.nowMs), [alice], AT));
  const two = accepted(decodeSpa(encodeSpa(fields, alice, AT.nowMs), [alice], AT));
  assert.notEqual(one.replayDigest, two.replayDigest, 'fresh random values');
});

test('encodeSpa refuses what fwknopd would not take, with a clear error', () => {
  const ok = { username: 'a', accessAddress: '192.0.2.1', access: 'tcp/22' };
  const bad = [
    { ...ok, username: '' },
    { ...ok, username: 'a:b' },
    { ...ok, username: 'x'.repeat(49) },
    { ...ok, accessAddress: 'example.com' },
    { ...ok, accessAddress: 'fe80::1%eth0' },
    { ...ok, access: 'tcp/0' },
    { ...ok, access: 'icmp/8' },
    { ...ok, access: '' },
    { ...ok, access: [] },
    { ...ok, access: Array.from({ length: 40 }, () => 'tcp/65535').join(',') },
    { ...ok, clientTimeoutSeconds: 0 },
    { ...ok, clientTimeoutSeconds: 1.5 },
  ];
  for (const fields of bad) {
    assert.throws(
      () => encodeSpa(fields, alice),
      (e: unknown) => isNonstopError(e) && e.code === 'NONSTOP_ERR_SPA_REQUEST_INVALID',
      JSON.stringify(fields),
    );
  }
});

test('key files: fwknop --key-gen output, the access.conf spelling, and what is wrong with the rest', () => {
  assert.deepEqual(parseSpaKeyFile(ALICE_FILE, 'alice'), alice);
  assert.equal(alice.encryptionKey.length, 32);
  assert.equal(alice.hmacKey.length, 64);
  const conf = ALICE_FILE.replace(/: /g, '      ').replace(/^/, '# access.conf stanza\n\n');
  assert.deepEqual(parseSpaKeyFile(conf, 'alice'), alice);

  const fresh = generateSpaKeys('carol');
  assert.deepEqual(parseSpaKeyFile(formatSpaKeyFile(fresh), 'carol'), fresh);
  assert.equal(formatSpaKeyFile(alice), ALICE_FILE);

  const [keyLine, hmacLine] = ALICE_FILE.split('\n') as [string, string];
  const wrong: [string, RegExp][] = [
    ['', /missing KEY_BASE64 and HMAC_KEY_BASE64/],
    [keyLine, /missing HMAC_KEY_BASE64/],
    [hmacLine, /missing KEY_BASE64$/],
    [`${keyLine}\n${keyLine}\n${hmacLine}`, /line 2: KEY_BASE64 given twice/],
    [`KEY_BASE64: not*base64\n${hmacLine}`, /line 1: KEY_BASE64 is not base64/],
    [`KEY_BASE64: abc\n${hmacLine}`, /line 1: KEY_BASE64 is not base64/],
    [`KEY_BASE64:\n${hmacLine}`, /line 1: KEY_BASE64 has no value/],
    [
      `KEY_BASE64: ${Buffer.alloc(8).toString('base64')}\n${hmacLine}`,
      /KEY_BASE64 is 8 bytes; expected 16 to 32/,
    ],
    [`${keyLine}\nHMAC_KEY_BASE64: ${Buffer.alloc(16).toString('base64')}`, /HMAC_KEY_BASE64 is 16 bytes/],
    [`${keyLine}\nHMAC_KEY_BASE64: ${Buffer.alloc(129).toString('base64')}`, /129 bytes; expected 32 to 128/],
    [`${keyLine}\nKEY passphrase\n${hmacLine}`, /line 2: expected "KEY_BASE64/],
    [`SOURCE ANY\n${ALICE_FILE}`, /line 1: expected/],
  ];
  for (const [text, message] of wrong) {
    assert.throws(
      () => parseSpaKeyFile(text, 'alice'),
      (e: unknown) =>
        isNonstopError(e) &&
        e.code === 'NONSTOP_ERR_SPA_KEY_INVALID' &&
        e.message.startsWith('SPA key for "alice"') &&
        message.test(e.message),
      text,
    );
  }
});

test('replay cache: refuses a digest within its lifetime, takes it after, and fails closed when full', () => {
  const lifetimeMs = spaReplayLifetimeMs(120, 120);
  assert.equal(lifetimeMs, 240_000);
  const cache = new SpaReplayCache({ lifetimeMs, maxEntries: 3 });
  const t0 = 1_000_000;
  assert.equal(cache.admit('a', t0), 'fresh');
  assert.equal(cache.admit('a', t0 + 1), 'replay');
  assert.equal(cache.admit('a', t0 + lifetimeMs - 1), 'replay');
  assert.equal(cache.admit('b', t0 + 10), 'fresh');
  assert.equal(cache.admit('c', t0 + 20), 'fresh');
  assert.equal(cache.admit('d', t0 + 30), 'full', 'full of live digests: refuse, do not evict');
  assert.equal(cache.admit('a', t0 + 40), 'replay', 'nothing was evicted');
  assert.equal(cache.size, 3);
  // 'a' expires first; the sweep makes room for exactly one.
  assert.equal(cache.admit('d', t0 + lifetimeMs), 'fresh');
  assert.equal(cache.admit('e', t0 + lifetimeMs), 'full');
  assert.equal(cache.admit('a', t0 + lifetimeMs + 1), 'full', "'a' is no longer remembered, but no room");
  cache.sweep(t0 + 10 * lifetimeMs);
  assert.equal(cache.size, 0);
  assert.equal(cache.admit('a', t0 + 10 * lifetimeMs), 'fresh');
  assert.throws(() => new SpaReplayCache({ lifetimeMs: 0, maxEntries: 1 }), RangeError);
  assert.throws(() => new SpaReplayCache({ lifetimeMs: 1, maxEntries: 0 }), RangeError);
});

test('replay cache with the decoder: a real packet is taken once', () => {
  const cache = new SpaReplayCache({ lifetimeMs: spaReplayLifetimeMs(120, 120), maxEntries: 100 });
  const r1 = accepted(decodeSpa(Buffer.from(FWKNOP_ACCESS), [alice], AT));
  const r2 = accepted(decodeSpa(Buffer.from(FWKNOP_ACCESS), [alice], AT));
  assert.equal(cache.admit(r1.replayDigest, AT.nowMs), 'fresh');
  assert.equal(cache.admit(r2.replayDigest, AT.nowMs + 1000), 'replay');
});

function b64(s: string): string {
  return Buffer.from(s).toString('base64').replace(/=+$/, '');
}
