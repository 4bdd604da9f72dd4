// The checks every published ACME challenge answer passes before a broker relays it, and the
// hub that relays only to the gateways serving the answer's name.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ChallengeRelayHub } from '../../broker/acme-relay-hub.js';
import {
  checkAnswer,
  checkOutbox,
  isDnsName,
  MAX_OUTBOX_BYTES,
  MAX_PUBLISHED_ANSWERS,
  relayedAnswers,
  type RelayedAnswer,
} from '../../lib/acme-relay.js';

const NOW = 1_800_000_000_000;
const THUMB = 'A'.repeat(42) + 'z';
const NAMES = new Set(['www.example.net']);

function answer(over: Record<string, unknown> = {}): Record<string, unknown> {
  const token = typeof over.token === 'string' ? over.token : 'tok_EN-123';
  return {
    type: 'http-01',
    identifier: 'www.example.net',
    token,
    keyAuthorization: `${token}.${THUMB}`,
    expiresAt: NOW + 60_000,
    ...over,
  };
}

const refusal = (value: unknown, names: ReadonlySet<string> = NAMES) => {
  const c = checkAnswer(value, names, NOW);
  return c.ok ? undefined : c.reason;
};

describe('a published answer', () => {
  test('a well-formed one for a served name passes, its name lower-cased', () => {
    const c = checkAnswer(answer({ identifier: 'WWW.Example.NET', type: 'tls-alpn-01' }), NAMES, NOW);
    assert.ok(c.ok);
    assert.equal(c.answer.identifier, 'www.example.net');
    assert.equal(c.answer.type, 'tls-alpn-01');
  });

  test('each malformed field is refused, and the reason never quotes the key authorization', () => {
    const cases: [string, unknown, RegExp][] = [
      ['not an object', 'x', /not an object/],
      ['an array', [answer()], /not an object/],
      ['an extra field', answer({ source: 'gw2' }), /field no gateway writes/],
      ['type', answer({ type: 'dns-01' }), /type/],
      ['type missing', answer({ type: undefined }), /type/],
      ['identifier not a string', answer({ identifier: 7 }), /identifier/],
      ['identifier an IP', answer({ identifier: '198.18.0.1' }), /identifier/],
      ['identifier a wildcard', answer({ identifier: '*.example.net' }), /identifier/],
      ['identifier one label', answer({ identifier: 'localhost' }), /identifier/],
      ['identifier a bad label', answer({ identifier: 'www-.example.net' }), /identifier/],
      ['identifier too long', answer({ identifier: `${'a'.repeat(63)}.`.repeat(4) + 'net' }), /identifier/],
      ['token empty', answer({ token: '', keyAuthorization: `.${THUMB}` }), /token/],
      ['token too long', answer({ token: 'a'.repeat(129) }), /token/],
      ['token not base64url', answer({ token: 'a/b', keyAuthorization: `a/b.${THUMB}` }), /token/],
      [
        'keyAuthorization of another token',
        answer({ keyAuthorization: `other.${THUMB}` }),
        /keyAuthorization/,
      ],
      [
        'keyAuthorization without a dot',
        answer({ keyAuthorization: `tok_EN-123${THUMB}x` }),
        /keyAuthorization/,
      ],
      [
        'keyAuthorization short thumbprint',
        answer({ keyAuthorization: `tok_EN-123.${THUMB.slice(1)}` }),
        /keyAuthorization/,
      ],
      [
        'keyAuthorization long thumbprint',
        answer({ keyAuthorization: `tok_EN-123.${THUMB}A` }),
        /keyAuthorization/,
      ],
      [
        'keyAuthorization padded',
        answer({ keyAuthorization: `tok_EN-123.${THUMB.slice(1)}=` }),
        /keyAuthorization/,
      ],
      ['keyAuthorization not a string', answer({ keyAuthorization: 5 }), /keyAuthorization/],
      ['expiresAt a string', answer({ expiresAt: String(NOW + 1000) }), /expiresAt/],
      ['expiresAt fractional', answer({ expiresAt: NOW + 0.5 }), /expiresAt/],
      ['expiresAt too far ahead', answer({ expiresAt: NOW + 10 * 60_000 + 1 }), /minutes ahead/],
      ['expired', answer({ expiresAt: NOW }), /^expired$/],
    ];
    for (const [what, value, reason] of cases) {
      const r = refusal(value);
      assert.ok(r !== undefined, `${what} must be refused`);
      assert.match(r, reason, what);
      assert.ok(!r.includes(THUMB), `${what}: the reason quotes no key authorization`);
    }
    assert.equal(refusal(answer({ expiresAt: NOW + 10 * 60_000 })), undefined, 'ten minutes is allowed');
  });

  test('a name the gateway does not serve is refused', () => {
    assert.match(refusal(answer({ identifier: 'other.example.net' }))!, /does not serve/);
    assert.match(refusal(answer(), new Set())!, /does not serve/);
    assert.equal(refusal(answer(), 'any' as never), undefined);
  });

  test('isDnsName', () => {
    for (const ok of ['a.b', 'www.example.net', 'x-1.example.com', 'xn--bcher-kva.example'])
      assert.ok(isDnsName(ok), ok);
    for (const bad of ['', 'a', 'a..b', '-a.b', 'a.b.', 'A.b', '1.2.3.4', 'a_b.c', 'a.b:80'])
      assert.ok(!isDnsName(bad), bad);
  });
});

describe('an outbox', () => {
  test('keeps the good answers, refuses the bad ones, counts the expired apart', () => {
    const text = JSON.stringify([
      answer({ token: 'b' }),
      answer({ token: 'a', type: 'tls-alpn-01' }),
      answer({ token: 'c', identifier: 'evil.example.org' }),
      answer({ token: 'd', expiresAt: NOW - 1 }),
      // A duplicate challenge: the later expiry wins.
      answer({ token: 'b', expiresAt: NOW + 120_000 }),
    ]);
    const c = checkOutbox(text, NAMES, NOW);
    assert.deepEqual(
      c.answers.map((a) => [a.type, a.token, a.expiresAt]),
      [
        ['http-01', 'b', NOW + 120_000],
        ['tls-alpn-01', 'a', NOW + 60_000],
      ],
    );
    assert.deepEqual(c.refused, [
      { reason: 'the gateway does not serve this name', type: 'http-01', identifier: 'evil.example.org' },
    ]);
    assert.equal(c.expired, 1);
  });

  test('too long, too many, not JSON or not an array: nothing is kept', () => {
    const many = JSON.stringify(
      Array.from({ length: MAX_PUBLISHED_ANSWERS + 1 }, (_, i) => answer({ token: `t${i}` })),
    );
    assert.ok(Buffer.byteLength(many) <= MAX_OUTBOX_BYTES, 'refused for the count, not the size');
    for (const [text, reason] of [
      [many, /33 answers/],
      [JSON.stringify([answer()]).padEnd(MAX_OUTBOX_BYTES + 1, ' '), /longer than/],
      ['[{', /not JSON/],
      [JSON.stringify(answer()), /not an array/],
    ] as const) {
      const c = checkOutbox(text, NAMES, NOW);
      assert.deepEqual(c.answers, []);
      assert.match(c.refused[0]!.reason, reason);
    }
  });

  test('what crossed IPC or was read back keeps only well-formed live answers', () => {
    const kept = relayedAnswers([answer(), answer({ token: 'x', expiresAt: NOW - 1 }), { junk: 1 }], NOW);
    assert.deepEqual(
      kept.map((a) => a.token),
      ['tok_EN-123'],
    );
    assert.deepEqual(relayedAnswers('nope', NOW), []);
  });
});

describe('the relay hub', () => {
  const gateways = [
    { id: 'gw1', names: ['www.example.net'] },
    { id: 'gw2', names: ['www.example.net', 'api.example.net'] },
    { id: 'gw3', names: ['other.example.org'] },
  ];

  function hub() {
    const handed: [string, string, string[]][] = [];
    const h = new ChallengeRelayHub(
      gateways,
      (target, source, answers: readonly RelayedAnswer[]) =>
        handed.push([target, source, answers.map((a) => a.token)]),
      () => NOW,
    );
    return { h, handed };
  }

  test('relays to every gateway of the name, the publisher included, and to no other', () => {
    const { h, handed } = hub();
    h.published('gw1', [answer({ token: 'one' })]);
    assert.deepEqual(handed, [
      ['gw1', 'gw1', ['one']],
      ['gw2', 'gw1', ['one']],
    ]);
  });

  test("a gateway's answer for a name only another serves is refused, not relayed", () => {
    const { h, handed } = hub();
    // gw1 does not serve api.example.net (gw2 does): relaying it would let gw1 get gw2's certificate.
    h.published('gw1', [answer({ token: 'steal', identifier: 'api.example.net' })]);
    assert.deepEqual(handed, []);
    assert.equal(h.refused, 1);
    h.published('gw2', [answer({ token: 'own', identifier: 'api.example.net' })]);
    assert.deepEqual(handed, [['gw2', 'gw2', ['own']]]);
  });

  test('a withdrawal hands the targets an empty set; nothing changed, nothing handed; resend repeats', () => {
    const { h, handed } = hub();
    h.published('gw1', [answer({ token: 'one' })]);
    h.published('gw1', [answer({ token: 'one' })]);
    assert.equal(handed.length, 2, 'the same outbox again is not handed again');
    h.published('gw1', []);
    assert.deepEqual(handed.slice(2), [
      ['gw1', 'gw1', []],
      ['gw2', 'gw1', []],
    ]);
    h.published('gw1', [answer({ token: 'two' })]);
    handed.length = 0;
    h.resend('gw2');
    assert.deepEqual(handed, [['gw2', 'gw1', ['two']]]);
    h.published('gw9', [answer()]);
    assert.equal(handed.length, 1, 'a gateway the broker does not know publishes nothing');
  });
});
