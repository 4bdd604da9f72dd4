import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isNonstopError } from '../../lib/errors.js';
import { generatePki, type Pki } from '../../lib/pki.js';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

const x509 = (file: string) => new X509Certificate(readFileSync(file));

async function freshDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nonstop-pki-unit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('keygen makes a broker client cert with OU nonstop-broker, signed by the internal CA', async (t) => {
  const pki = await generatePki({ dir: await freshDir(t), brokers: ['b1', 'b2'], gateways: ['gw1'] });
  const ca = x509(pki.ca.cert);
  for (const id of ['b1', 'b2']) {
    const cert = x509(pki.brokers[id]!.cert);
    assert.equal(
      cert.subject.split('\n').find((l) => l.startsWith('OU=')),
      'OU=nonstop-broker',
    );
    assert.ok(cert.subject.split('\n').includes(`CN=${id}`));
    assert.deepEqual(cert.keyUsage, [CLIENT_AUTH]);
    assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey));
    assert.equal(cert.ca, false);
  }
  assert.equal(ca.ca, true);
});

test('keygen signs gateway certs with the public CA only, never the internal one', async (t) => {
  const pki = await generatePki({
    dir: await freshDir(t),
    gateways: ['gw1', 'gw2'],
    gatewayNames: ['gw.example.org'],
  });
  const internal = x509(pki.ca.cert);
  const publicCa = x509(pki.publicCa.cert);
  assert.notEqual(internal.fingerprint256, publicCa.fingerprint256);
  for (const id of ['gw1', 'gw2']) {
    const cert = x509(pki.gateways[id]!.cert);
    assert.equal(cert.verify(internal.publicKey), false);
    assert.equal(cert.checkIssued(internal), false);
    assert.equal(cert.verify(publicCa.publicKey), true);
    assert.deepEqual(cert.keyUsage, [SERVER_AUTH]);
    assert.equal(cert.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, DNS:gw.example.org');
  }
});

test("keygen puts a gateway's IPv4 and IPv6 addresses into its cert as IP SANs", async (t) => {
  const pki = await generatePki({ dir: await freshDir(t), gatewayNames: ['198.18.0.11', '2001:2:0:1::b'] });
  const cert = x509(pki.gateways.gw1!.cert);
  assert.equal(
    cert.subjectAltName,
    'DNS:localhost, IP Address:127.0.0.1, IP Address:198.18.0.11, IP Address:2001:2:0:1:0:0:0:B',
  );
  assert.equal(cert.checkIP('2001:2:0:1::b'), '2001:2:0:1::b');
  assert.equal(cert.checkIP('2001:2:0:1::c'), undefined);
  assert.equal(cert.checkIP('198.18.0.11'), '198.18.0.11');
});

test('keygen gives the core a serverAuth cert with the requested names, IPs as IP SANs', async (t) => {
  const pki = await generatePki({ dir: await freshDir(t), coreNames: ['core.internal', '10.0.0.5', '::1'] });
  const cert = x509(pki.core.cert);
  assert.equal(cert.subjectAltName, 'DNS:core.internal, IP Address:10.0.0.5, IP Address:0:0:0:0:0:0:0:1');
  assert.deepEqual(cert.keyUsage, [SERVER_AUTH]);
  assert.ok(cert.verify(x509(pki.ca.cert).publicKey));
  assert.equal(cert.checkIP('10.0.0.5'), '10.0.0.5');
});

test('keygen writes EC P-256 private keys with mode 0600', async (t) => {
  const pki = await generatePki({ dir: await freshDir(t) });
  const keys = allFiles(pki).filter((f) => f.endsWith('.key'));
  assert.equal(keys.length, 5);
  for (const key of keys) {
    assert.equal(statSync(key).mode & 0o777, 0o600, key);
    const details = createPrivateKey(readFileSync(key)).asymmetricKeyDetails;
    assert.equal(details?.namedCurve, 'prime256v1');
  }
  for (const cert of allFiles(pki).filter((f) => f.endsWith('.crt'))) {
    assert.equal(statSync(cert).mode & 0o777, 0o644, cert);
  }
});

test('keygen keeps existing files, adds only new ones, and replaces all with force', async (t) => {
  const dir = await freshDir(t);
  const first = await generatePki({ dir, brokers: ['b1'] });
  assert.equal(first.written.length, 10);
  const caBefore = readFileSync(first.ca.cert, 'utf8');

  const again = await generatePki({ dir, brokers: ['b1'] });
  assert.deepEqual(again.written, []);
  assert.equal(readFileSync(again.ca.cert, 'utf8'), caBefore);

  const more = await generatePki({ dir, brokers: ['b1', 'b3'] });
  assert.deepEqual(more.written, [join(dir, 'broker-b3.key'), join(dir, 'broker-b3.crt')]);
  assert.ok(x509(more.brokers.b3!.cert).verify(x509(more.ca.cert).publicKey));

  const forced = await generatePki({ dir, brokers: ['b1'], force: true });
  assert.equal(forced.written.length, 10);
  assert.notEqual(readFileSync(forced.ca.cert, 'utf8'), caBefore);
  assert.ok(x509(forced.brokers.b1!.cert).verify(x509(forced.ca.cert).publicKey));
});

test('keygen re-issues the leaves of a CA it had to make again', async (t) => {
  const dir = await freshDir(t);
  await generatePki({ dir });
  await rm(join(dir, 'ca.crt'));
  const pki = await generatePki({ dir });
  assert.ok(pki.written.includes(join(dir, 'core.crt')));
  assert.ok(pki.written.includes(join(dir, 'broker-b1.crt')));
  assert.ok(!pki.written.includes(join(dir, 'gateway-gw1.crt')), 'the public CA was kept, so are its certs');
  assert.ok(x509(pki.core.cert).verify(x509(pki.ca.cert).publicKey));
});

test('keygen refuses ids and names that are not safe in a subject or SAN', async (t) => {
  const dir = await freshDir(t);
  for (const options of [
    { brokers: ['b1/OU=x'] },
    { gateways: ['GW'] },
    { coreNames: ['bad name'] },
    // An IPv6 address is given bare, not as it is written in a URL.
    { gatewayNames: ['[2001:2:0:1::b]'] },
    { brokers: ['b1', 'b1'] },
  ]) {
    await assert.rejects(
      generatePki({ dir, ...options }),
      (err) => isNonstopError(err) && err.code === 'NONSTOP_ERR_PKI_FAILED',
    );
  }
});

function allFiles(pki: Pki): string[] {
  return [
    pki.ca,
    pki.core,
    pki.publicCa,
    ...Object.values(pki.brokers),
    ...Object.values(pki.gateways),
  ].flatMap((f) => [f.cert, f.key]);
}
