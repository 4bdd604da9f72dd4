import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseGuardConfig, parseKnockConfig, parseKnockSequence } from '../../config/knock.js';

const secret = 'A'.repeat(43);

function guardError(doc: object): string {
  try {
    parseGuardConfig('gw/guard.json', { kind: 'guard', gateway: 'gw1', ...doc });
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail('expected a config error');
}

test('defaults come from the schema', () => {
  const c = parseGuardConfig('guard.json', { kind: 'guard', gateway: 'gw1' });
  assert.equal(c.sshPort, 22);
  assert.deepEqual(c.publicTcpPorts, [80, 443]);
  assert.equal(c.windowSeconds, 30);
  assert.equal(c.removeTableOnExit, false);
  assert.deepEqual(c.divertProtocols, { tcp: 253, udp: 254 });
  assert.equal(c.rotating.stepSeconds, 30);
  assert.ok(Object.isFrozen(c));
});

test('errors name the file and the field', () => {
  assert.match(guardError({ windowSeconds: 0 }), /gw\/guard\.json: field "windowSeconds" must be >= 1/);
  assert.match(guardError({ sshPort: 'x' }), /field "sshPort" must be integer/);
  assert.match(guardError({ gateway: 'GW 1' }), /field "gateway" must match pattern/);
  assert.match(guardError({ extra: 1 }), /field "extra" is not a known field/);
  assert.match(
    guardError({ static: [{ name: 'ops', sequence: ['7000', '99999'] }] }),
    /field "static\[0\]\.sequence\[1\]" port 99999 is outside 1-65535/,
  );
  assert.match(
    guardError({ static: [{ name: 'ops', sequence: ['443'] }] }),
    /field "static\[0\]\.sequence\[0\]" port 443 is a served port/,
  );
  assert.match(
    guardError({ rotating: { portMin: 20, portMax: 500, clients: [{ name: 'a', secret }] } }),
    /field "rotating\.portMin" the knock range 20-500 contains served port 22/,
  );
  assert.match(
    guardError({ rotating: { portMin: 3000, portMax: 2000 } }),
    /field "rotating\.portMax" must be at least/,
  );
  assert.match(
    guardError({ rotating: { clients: [{ name: 'a', secret: 'short' }] } }),
    /field "rotating\.clients\[0\]\.secret" must match pattern/,
  );
  assert.match(
    guardError({
      rotating: {
        clients: [
          { name: 'a', secret },
          { name: 'a', secret },
        ],
      },
    }),
    /field "rotating\.clients\[1\]\.name" "a" is used twice/,
  );
});

test('knock profiles need exactly one of sequence, rotating or spa', () => {
  assert.throws(
    () => parseKnockConfig('knock.json', { kind: 'knock', profiles: { gw1: { host: 'x' } } }),
    /knock\.json: field "profiles\.gw1" needs exactly one of "sequence", "rotating" or "spa"/,
  );
  const ok = parseKnockConfig('knock.json', {
    kind: 'knock',
    profiles: { gw1: { sequence: ['7000', '8000:udp'] } },
  });
  assert.equal(ok.profiles.gw1?.sshPort, 22);
  assert.throws(
    () => parseKnockConfig('knock.json', { kind: 'knock', profiles: { gw1: { sequence: ['70000'] } } }),
    /field "profiles\.gw1\.sequence\[0\]" port 70000 is outside/,
  );
});

test('sequences in knockd notation', () => {
  assert.deepEqual(parseKnockSequence('7000,8000:udp,9000:tcp'), [
    { port: 7000, protocol: 'tcp' },
    { port: 8000, protocol: 'udp' },
    { port: 9000, protocol: 'tcp' },
  ]);
  assert.throws(() => parseKnockSequence('7000,abc'), /"abc" is not a knock step/);
  assert.throws(() => parseKnockSequence('0'), /outside 1-65535/);
});

test('spa: defaults as fwknopd has them, and what the schema cannot say', () => {
  const key = Buffer.alloc(32, 1).toString('base64');
  const hmacKey = Buffer.alloc(64, 2).toString('base64');
  const c = parseGuardConfig('guard.json', {
    kind: 'guard',
    gateway: 'gw1',
    spa: { clients: [{ name: 'alice', key, hmacKey }] },
  });
  assert.equal(c.spa?.port, 62201);
  assert.equal(c.spa?.maxAgeSeconds, 120);
  assert.equal(c.spa?.clients[0]?.openFor, 'source');
  const spa = (clients: object[], extra: object = {}) => guardError({ spa: { clients, ...extra }, ...extra });
  assert.match(
    guardError({
      static: [{ name: 'ops', sequence: ['7000', '62201:udp'] }],
      spa: { clients: [{ name: 'alice', key, hmacKey }] },
    }),
    /field "static\[0\]\.sequence\[1\]" port 62201\/udp is the SPA port/,
  );
  assert.match(
    spa([
      { name: 'alice', key, hmacKey },
      { name: 'alice', key, hmacKey },
    ]),
    /field "spa\.clients\[1\]\.name" "alice" is used twice/,
  );
  assert.match(
    spa([
      { name: 'alice', key, hmacKey },
      { name: 'bob', key, hmacKey },
    ]),
    /field "spa\.clients\[1\]\.hmacKey" the same key as client "alice"'s/,
  );
  assert.match(
    spa([{ name: 'alice', key: Buffer.alloc(8).toString('base64'), hmacKey }]),
    /field "spa\.clients\[0\]\.key" decodes to 8 bytes; a Rijndael key is 16-32/,
  );
  assert.match(spa([]), /field "spa\.clients" must NOT have fewer than 1 items/);
  assert.match(spa([{ name: 'alice', key: 'not base64!', hmacKey }]), /spa\.clients\[0\]\.key/);
});

test('a knock profile may send SPA instead of a sequence, with an IP to open if it names one', () => {
  const key = Buffer.alloc(32, 1).toString('base64');
  const hmacKey = Buffer.alloc(64, 2).toString('base64');
  const profile = (spa: object) =>
    parseKnockConfig('knock.json', { kind: 'knock', profiles: { gw1: { spa } } });
  assert.equal(profile({ key, hmacKey }).profiles.gw1?.spa?.port, 62201);
  assert.throws(
    () => profile({ key, hmacKey, allow: 'gw.example' }),
    /profiles\.gw1\.spa\.allow" "gw\.example" is not an IP/,
  );
  assert.throws(
    () =>
      parseKnockConfig('knock.json', {
        kind: 'knock',
        profiles: { gw1: { spa: { key, hmacKey }, sequence: ['7000'] } },
      }),
    /needs exactly one of "sequence", "rotating" or "spa"/,
  );
});
