// Certificates from a real ACME CA across the namespace world: pebble runs in inet, and its DNS
// points SITE_NAME at gw2 only. gw1 orders by HTTP-01 and gw3 by TLS-ALPN-01: the CA's
// validations all reach gw2, which answers with what the other gateway published through the
// brokers. A client in inet then gets the issued certificate from gw1 and gw3 (trusting only
// pebble's issuing root), and gw1's short-lived certificate is renewed while a keep-alive
// connection to it stays open on its old one.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { AcmeInput } from '../../config/render/gateway.js';
import { WORLD_METRICS_PORT } from '../../world/host-configs.js';
import { SITE_NAME, ThreeTier, type GatewayNode } from '../../world/three-tier.js';
import { worldSkipReason, type Host } from '../../world/world.js';
import { tempDir } from '../helpers/files.js';
import { sampleValue } from '../helpers/prometheus.js';
import { preparePebble, type PreparedPebble, type RunningPebble } from '../helpers/world-pebble.js';

const skip = worldSkipReason();
const PEER = 'dist/test/helpers/keepalive-tls-peer.js';
/** Short enough to see a renewal within the test; long enough for the checks before it. */
const VALIDITY_SECONDS = 60;
const RENEW_FRACTION = 0.4;

/** Which challenge each gateway answers: gw2 (where the CA's DNS points) answers both. */
const CHALLENGES: Readonly<Record<string, AcmeInput['challenges']>> = {
  gw1: ['http-01'],
  gw2: ['http-01', 'tls-alpn-01'],
  gw3: ['tls-alpn-01'],
};

/** The first certificate (PEM) of a chain, normalised. */
function leaf(pem: string): string {
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
  assert.ok(m !== null, 'a PEM certificate');
  return new X509Certificate(m[0]).toString();
}

/** `_acme` requests a gateway answered since it started, by status. */
async function acmeRequests(g: GatewayNode, status: string): Promise<number> {
  const text = await g.host.check('curl', [
    '-sS',
    '--max-time',
    '5',
    `http://127.0.0.1:${WORLD_METRICS_PORT}/metrics`,
  ]);
  return sampleValue(text, 'nonstop_gateway_requests_total', { route: '_acme', status }) ?? 0;
}

/** GET https://SITE_NAME/healthz from inet through `g` (curl --resolve), trusting `root` only. */
async function fetchSite(
  inet: Host,
  g: GatewayNode,
  root: string,
): Promise<{ status: string; leaf: string }> {
  const r = await inet.exec('curl', [
    '-sS',
    '--max-time',
    '10',
    '--resolve',
    `${SITE_NAME}:443:${g.ip}`,
    '--cacert',
    root,
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}\n%{certs}',
    `https://${SITE_NAME}/healthz`,
  ]);
  assert.equal(r.code, 0, `curl through ${g.id}: ${r.stderr}`);
  const [status = '', ...certs] = r.stdout.split('\n');
  return { status, leaf: leaf(certs.join('\n')) };
}

/** The certificate the gateway saved from its last order (its ACME state folder). */
function savedLeaf(g: GatewayNode): string {
  return leaf(readFileSync(join(g.dir, 'acme', 'cert.pem'), 'utf8'));
}

/** Resolves once the gateway serves a certificate it ordered; fails with pebble's last words. */
async function orderedCertificate(g: GatewayNode, pebble: RunningPebble): Promise<void> {
  try {
    await g.gateway.waitForLine(
      (l) => l.includes('"msg":"serving TLS certificate"') && l.includes('"source":"order"'),
      45_000,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\npebble:\n${pebble.output().slice(-4000)}`, { cause: err });
  }
}

describe('ACME certificates in the world, validated through another gateway', { skip }, () => {
  test('HTTP-01 (gw1) and TLS-ALPN-01 (gw3) answered by gw2; renewal under an open keep-alive connection', async (t) => {
    const dir = tempDir(t, 'nonstop-acme-world-');
    let prepared: PreparedPebble | undefined;
    const tt = await ThreeTier.start({
      gateways: 3,
      brokers: 2,
      gatewayAcme: async ({ inet }) => {
        prepared = await preparePebble(inet, dir, { validitySeconds: VALIDITY_SECONDS });
        const { directoryUrl, caFile } = prepared;
        return (id) => ({
          directoryUrl,
          caFile,
          domains: [SITE_NAME],
          challenges: CHALLENGES[id]!,
          renewFraction: RENEW_FRACTION,
        });
      },
    });
    t.after(() => tt.close());
    const [gw1, gw2, gw3] = [tt.gateway('gw1'), tt.gateway('gw2'), tt.gateway('gw3')];

    // The CA was not up when the gateways started (their first orders failed, the next is a
    // minute away): start it, point the name at gw2, and restart gw1 to order at once.
    const pebble = await prepared!.start();
    t.after(() => pebble.stop());
    await pebble.addA(SITE_NAME, gw2.ip);
    const root = join(dir, 'pebble-root.pem');
    writeFileSync(root, await pebble.issuingRoot());
    const gw2AnsweredBefore = await acmeRequests(gw2, '200');

    await tt.restartGateway('gw1');
    await orderedCertificate(gw1, pebble);
    const viaGw1 = await fetchSite(tt.inet, gw1, root);
    assert.equal(viaGw1.status, '200');
    assert.equal(viaGw1.leaf, savedLeaf(gw1), 'gw1 serves the certificate it ordered');
    const cert1 = new X509Certificate(viaGw1.leaf);
    assert.equal(cert1.subjectAltName, `DNS:${SITE_NAME}`);
    assert.match(cert1.issuer, /Pebble/i);
    // The CA never reached gw1: gw2 answered gw1's token (relayed by the brokers).
    assert.equal(await acmeRequests(gw1, '200'), 0, 'no validation reached gw1');
    assert.ok((await acmeRequests(gw2, '200')) > gw2AnsweredBefore, 'gw2 answered an HTTP-01 validation');
    assert.equal(await acmeRequests(gw2, '404'), 0, 'gw2 had the answer when the CA came');
    assert.ok(!gw1.gateway.lines.some((l) => l.includes('no broker relayed')), 'the answer was relayed');

    // TLS-ALPN-01: gw3 has no HTTP-01; the CA's acme-tls/1 handshake to gw2 gets gw3's answer.
    await tt.restartGateway('gw3');
    await orderedCertificate(gw3, pebble);
    const viaGw3 = await fetchSite(tt.inet, gw3, root);
    assert.equal(viaGw3.status, '200');
    assert.equal(viaGw3.leaf, savedLeaf(gw3), 'gw3 serves the certificate it ordered');
    assert.notEqual(new X509Certificate(viaGw3.leaf).serialNumber, cert1.serialNumber);
    assert.equal(await acmeRequests(gw3, '200'), 0, 'gw3 answered no HTTP-01 either');
    // gw2 had gw3's answer when the CA's acme-tls/1 handshake came (it warns of one it has not).
    assert.ok(!gw2.gateway.lines.some((l) => l.includes('tls-alpn-01 validation for a name without')));

    // Renewal of gw1's short-lived certificate (again validated through gw2) while a client in
    // inet keeps one connection open: it keeps its certificate, new handshakes get the new one.
    const renewAt = new Date(cert1.validFrom).getTime() + VALIDITY_SECONDS * 1000 * RENEW_FRACTION;
    const r = await tt.inet.runNode(
      PEER,
      [
        JSON.stringify({
          address: gw1.ip,
          name: SITE_NAME,
          ca: root,
          path: '/healthz',
          timeoutMs: Math.max(0, renewAt - Date.now()) + 30_000,
        }),
      ],
      { timeoutMs: 120_000 },
    );
    const seen = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as {
      error?: string;
      first?: { status: number; localPort: number; serial: string };
      renewed?: string;
      last?: { status: number; localPort: number; serial: string };
      requests?: number;
    };
    assert.equal(seen.error, undefined, `${r.stdout}${r.stderr}\npebble:\n${pebble.output().slice(-3000)}`);
    assert.equal(seen.first!.status, 200);
    assert.equal(seen.first!.serial, cert1.serialNumber);
    assert.notEqual(seen.renewed, cert1.serialNumber);
    assert.equal(seen.renewed, new X509Certificate(savedLeaf(gw1)).serialNumber, 'the renewed one is saved');
    assert.deepEqual(seen.last, seen.first, 'the open connection kept its certificate');
    assert.equal(await acmeRequests(gw1, '200'), 0, 'the renewal was validated through gw2 as well');
  });
});
