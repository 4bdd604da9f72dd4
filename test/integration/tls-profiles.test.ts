// The TLS the gateway offers the internet (Mozilla "intermediate": TLS 1.2 with ECDHE + AEAD
// suites only, and TLS 1.3), its HSTS header, and the core's TLS 1.3-only mutual TLS, probed
// with node:tls clients the way a scanner would: one handshake per protocol and per suite.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { request as httpRequest } from 'node:http';
import { describe, test, type TestContext } from 'node:test';
import { connect, getCiphers, type ConnectionOptions, type SecureVersion, type TLSSocket } from 'node:tls';
import { validateConfig } from '../../config/load.js';
import { loadRoutes } from '../../config/routes.js';
import { startCore } from '../../core/server.js';
import { startGateway, type Gateway } from '../../gateway/server.js';
import { TLS12_SUITES } from '../../gateway/tls-profile.js';
import { silentLogger } from '../../lib/log.js';
import { testCoreConfig } from '../helpers/core.js';
import { exampleRoutesFile } from '../helpers/files.js';
import { testIdempotencySecretFile } from '../helpers/idempotency.js';
import { usePki } from '../helpers/pki.js';
import { REDIS_HOST, REDIS_PORT } from '../helpers/redis.js';

interface Handshake {
  readonly ok: boolean;
  readonly protocol?: string | null;
  readonly cipher?: string;
  readonly error?: string;
}

/** One handshake; `@SECLEVEL=0` lets the client offer what modern OpenSSL would not. */
function handshake(port: number, options: ConnectionOptions): Promise<Handshake> {
  return new Promise((resolve) => {
    let socket: TLSSocket;
    try {
      socket = connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        rejectUnauthorized: false,
        ...options,
      });
    } catch (err) {
      // This client cannot offer it at all (a name its OpenSSL does not build).
      resolve({ ok: false, error: `client: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
      return;
    }
    socket.setTimeout(5000, () => socket.destroy(new Error('timeout')));
    socket.once('secureConnect', () => {
      resolve({ ok: true, protocol: socket.getProtocol(), cipher: socket.getCipher().standardName });
      socket.end();
    });
    socket.once('error', (err: NodeJS.ErrnoException) =>
      resolve({ ok: false, error: err.code ?? err.message }),
    );
  });
}

const tls12 = (ciphers: string): ConnectionOptions => ({
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.2',
  ciphers: `${ciphers}:@SECLEVEL=0`,
});

async function gateway(
  t: TestContext,
  pki: ReturnType<ReturnType<typeof usePki>>,
  https: Record<string, unknown> = {},
): Promise<Gateway> {
  const config = validateConfig('gateway', 'tls-gateway.json', {
    kind: 'gateway',
    id: 'gw1',
    routes: exampleRoutesFile,
    http: { host: '127.0.0.1', port: 0, mode: 'serve' },
    https: { host: '127.0.0.1', port: 0, cert: pki.gateways.gw1!.cert, key: pki.gateways.gw1!.key, ...https },
    redis: { host: REDIS_HOST, port: REDIS_PORT, prefix: `tls-${process.pid}` },
    idempotency: { secretFile: testIdempotencySecretFile() },
  });
  const gw = await startGateway(config, loadRoutes(config.routes), silentLogger());
  t.after(() => gw.close());
  return gw;
}

function headers(url: string): Promise<Record<string, string | string[] | undefined>> {
  return new Promise((resolve, reject) => {
    const send = url.startsWith('https:') ? request : httpRequest;
    const req = send(url, { rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.headers);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('TLS profiles', () => {
  const pki = usePki({ brokers: ['b1'] });

  test('the gateway refuses TLS 1.1 and CBC, SHA-1, CCM-8 and ARIA suites; it negotiates AEAD ones', async (t) => {
    const port = (await gateway(t, pki())).https!.port;
    for (const version of ['TLSv1', 'TLSv1.1'] as SecureVersion[]) {
      const old = await handshake(port, {
        minVersion: version,
        maxVersion: version,
        ciphers: 'ALL:@SECLEVEL=0',
      });
      assert.equal(old.ok, false, `${version} was accepted`);
    }
    for (const suite of [
      'ECDHE-ECDSA-AES128-SHA',
      'ECDHE-ECDSA-AES256-SHA384',
      'ECDHE-ECDSA-AES128-CCM8',
      'ECDHE-ECDSA-AES128-CCM',
      'ECDHE-ECDSA-ARIA128-GCM-SHA256',
      'AES128-GCM-SHA256',
    ]) {
      const weak = await handshake(port, tls12(suite));
      assert.equal(weak.ok, false, `${suite} was accepted`);
    }
    const aead = await handshake(port, tls12('ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-GCM-SHA256'));
    assert.deepEqual(aead, {
      ok: true,
      protocol: 'TLSv1.2',
      cipher: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
    });
    const chacha = await handshake(port, tls12('ECDHE-ECDSA-CHACHA20-POLY1305'));
    assert.equal(chacha.cipher, 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256');
    const v13 = await handshake(port, { minVersion: 'TLSv1.3' });
    assert.equal(v13.protocol, 'TLSv1.3');
    assert.match(v13.cipher ?? '', /^TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$/);
    // Groups: X25519, P-256, P-384 and nothing else.
    for (const [curve, ok] of [
      ['X25519', true],
      ['P-256', true],
      ['P-384', true],
      ['P-521', false],
      ['ffdhe2048', false],
    ] as const) {
      const r = await handshake(port, { minVersion: 'TLSv1.3', ecdhCurve: curve });
      assert.equal(r.ok, ok, `group ${curve}`);
    }
  });

  test('a scan of every TLS 1.2 suite OpenSSL knows accepts exactly the AEAD ECDHE ones', async (t) => {
    const port = (await gateway(t, pki())).https!.port;
    const accepted: string[] = [];
    let offered = 0;
    for (const name of getCiphers().map((c) => c.toUpperCase())) {
      if (name.startsWith('TLS_')) continue; // TLS 1.3 suites are not TLS 1.2 cipher strings
      const r = await handshake(port, tls12(name));
      if (r.ok) accepted.push(name);
      if (r.ok || !(r.error ?? '').startsWith('client:')) offered += 1;
    }
    console.log(`tls1.2 suites offered: ${offered}; accepted: ${accepted.join(' ')}`);
    assert.ok(offered >= 30, `only ${offered} suites could be offered: the scan proves little`);
    // The certificate is ECDSA, so the RSA-authenticated suites of the profile cannot be chosen.
    const expected = TLS12_SUITES.filter((s) => s.startsWith('ECDHE-ECDSA-')).sort();
    assert.deepEqual(accepted.sort(), expected);
  });

  test('HSTS: configurable, on HTTPS answers only; a preload the list would refuse is refused', async (t) => {
    const plain = await gateway(t, pki());
    assert.equal(
      (await headers(`https://127.0.0.1:${plain.https!.port}/healthz`))['strict-transport-security'],
      'max-age=31536000',
    );
    assert.equal(
      (await headers(`http://127.0.0.1:${plain.http!.port}/healthz`))['strict-transport-security'],
      undefined,
    );
    const strict = await gateway(t, pki(), {
      hsts: { maxAge: 63072000, includeSubDomains: true, preload: true },
    });
    assert.equal(
      (await headers(`https://127.0.0.1:${strict.https!.port}/notes/x`))['strict-transport-security'],
      'max-age=63072000; includeSubDomains; preload',
      'on refusals too',
    );
    await assert.rejects(
      gateway(t, pki(), { hsts: { preload: true } }),
      /https\.hsts\.preload.*includeSubDomains/,
    );
    const modern = (await gateway(t, pki(), { profile: 'modern' })).https!.port;
    assert.equal(
      (await handshake(modern, tls12('ECDHE-ECDSA-AES128-GCM-SHA256'))).ok,
      false,
      'modern: no TLS 1.2',
    );
    assert.equal((await handshake(modern, {})).protocol, 'TLSv1.3');
  });

  test('the core speaks TLS 1.3 only: a broker certificate over TLS 1.2 is refused', async (t) => {
    const core = await startCore(testCoreConfig(pki(), {}), silentLogger());
    t.after(() => core.close());
    const client = { ...pki().pem(pki().brokers.b1!), ca: pki().pem(pki().ca).cert, servername: 'core' };
    const old = await handshake(core.address.port, {
      ...client,
      rejectUnauthorized: true,
      maxVersion: 'TLSv1.2',
    });
    assert.equal(old.ok, false, 'TLS 1.2 accepted');
    const ok = await handshake(core.address.port, { ...client, rejectUnauthorized: true });
    assert.equal(ok.protocol, 'TLSv1.3');
  });
});
