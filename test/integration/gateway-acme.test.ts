// The gateway's own certificates from a real ACME server (pebble on loopback): first issuance
// over HTTP-01 and TLS-ALPN-01, the state folder's modes, renewal of short-lived certificates
// under an open keep-alive connection, and each failure mode's logged code and /readyz.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { statSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { validateConfig } from '../../config/load.js';
import { loadRoutes } from '../../config/routes.js';
import { LocalChallengeStore, type ChallengeAnswer } from '../../gateway/acme/challenges.js';
import type { ServedCertificate } from '../../gateway/acme/manager.js';
import { startGateway, type Gateway } from '../../gateway/server.js';
import { errors } from '../../lib/errors.js';
import { freePort } from '../../lib/free-port.js';
import { exampleRoutesFile, tempDir } from '../helpers/files.js';
import { captureLogger, type CapturedLog } from '../helpers/log.js';
import { startPebble } from '../helpers/pebble.js';
import { REDIS_HOST, REDIS_PORT } from '../helpers/redis.js';
import { until } from '../helpers/until.js';

const NAME = 'gw.nonstop.test';
const FAST_RETRY = { retryMinMs: 200, retryMaxMs: 1000, jitter: 0.5 };

interface AcmeGateway {
  readonly gateway: Gateway;
  readonly log: CapturedLog;
  readonly served: ServedCertificate[];
  readonly stateDir: string;
}

async function startAcmeGateway(
  t: TestContext,
  options: {
    httpPort: number;
    httpsPort: number;
    httpMode?: 'redirect' | 'serve' | 'off';
    acme: Record<string, unknown>;
    stateDir?: string;
    challenges?: LocalChallengeStore;
  },
): Promise<AcmeGateway> {
  const stateDir = options.stateDir ?? join(tempDir(t, 'nonstop-acme-'), 'state');
  const config = validateConfig('gateway', 'acme-gateway.json', {
    kind: 'gateway',
    id: 'gw1',
    routes: exampleRoutesFile,
    http: { host: '127.0.0.1', port: options.httpPort, mode: options.httpMode ?? 'redirect' },
    https: {
      host: '127.0.0.1',
      port: options.httpsPort,
      acme: { domains: [NAME], stateDir, ...FAST_RETRY, ...options.acme },
    },
    redis: {
      host: REDIS_HOST,
      port: REDIS_PORT,
      prefix: `acme${process.pid}${Math.random().toString(36).slice(2)}`,
    },
  });
  const log = captureLogger('info');
  const served: ServedCertificate[] = [];
  const gateway = await startGateway(config, loadRoutes(config.routes), log.logger, {
    // This gateway's own answers only (the relay through brokers: test/integration/acme-relay.test.ts).
    challenges: options.challenges ?? new LocalChallengeStore(),
    onCertificate: (cert) => served.push(cert),
  });
  t.after(() => gateway.close());
  return { gateway, log, served, stateDir };
}

/** The certificate the HTTPS listener presents for NAME. */
function peerCertificate(port: number): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: NAME, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate());
      socket.end();
    });
    socket.on('error', reject);
  });
}

function httpGet(
  port: number,
  path: string,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host: NAME } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** GET over HTTPS through `agent`; resolves with the status and the TLS socket's local port. */
function httpsGet(
  agent: Agent,
  port: number,
  path: string,
): Promise<{ status: number; localPort: number; serial: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path, agent, servername: NAME, headers: { host: NAME } },
      (res) => {
        const socket = res.socket as TLSSocket;
        const seen = {
          status: res.statusCode ?? 0,
          localPort: socket.localPort ?? 0,
          serial: socket.getPeerCertificate().serialNumber,
        };
        res.resume();
        res.on('end', () => resolve(seen));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function loggedCodes(log: CapturedLog): unknown[] {
  return log
    .lines()
    .map((l) => l.code)
    .filter((c) => c !== undefined);
}

function mode(file: string): number {
  return statSync(file).mode & 0o777;
}

describe('gateway ACME', () => {
  test('HTTP-01: first issuance in redirect mode, files 0600, served over HTTPS, then reloaded from state', async (t) => {
    const [httpPort, httpsPort] = await Promise.all([freePort(), freePort()]);
    const pebble = await startPebble(t, { httpPort, tlsPort: httpsPort });
    const acme = {
      directoryUrl: pebble.directoryUrl,
      caFile: pebble.caFile,
      challenges: ['http-01'],
      email: 'ops@nonstop.test',
    };
    const gw = await startAcmeGateway(t, { httpPort, httpsPort, acme });

    await until('the first ACME certificate', () => gw.served.length > 0, 30_000);
    assert.equal(gw.served[0]!.source, 'order');
    assert.deepEqual(gw.served[0]!.names, [NAME]);
    for (const f of ['account.key', 'account.json', 'cert.pem', 'key.pem'])
      assert.equal(mode(join(gw.stateDir, f)), 0o600, f);
    assert.equal(mode(gw.stateDir), 0o700);

    const peer = await peerCertificate(httpsPort);
    assert.match(String(peer.issuer.CN), /Pebble/i);
    assert.equal(peer.subjectaltname, `DNS:${NAME}`);

    // Port 80 still redirects everything else, and answers no unknown or malformed token.
    assert.equal((await httpGet(httpPort, '/notes')).status, 308);
    assert.equal((await httpGet(httpPort, '/.well-known/acme-challenge/unknownToken')).status, 404);
    assert.equal((await httpGet(httpPort, '/.well-known/acme-challenge/bad%2Ftoken')).status, 404);
    const codes = loggedCodes(gw.log);
    assert.deepEqual(codes, [], `no errors logged: ${JSON.stringify(codes)}`);

    // A restart serves the saved certificate without ordering.
    await gw.gateway.close();
    const [httpPort2, httpsPort2] = await Promise.all([freePort(), freePort()]);
    const again = await startAcmeGateway(t, {
      httpPort: httpPort2,
      httpsPort: httpsPort2,
      acme,
      stateDir: gw.stateDir,
    });
    assert.equal(again.served.length, 1);
    assert.equal(again.served[0]!.source, 'state');
    assert.equal((await peerCertificate(httpsPort2)).serialNumber, peer.serialNumber);
  });

  test('TLS-ALPN-01: first issuance with port 80 off', async (t) => {
    const [httpPort, httpsPort] = await Promise.all([freePort(), freePort()]);
    const pebble = await startPebble(t, { httpPort, tlsPort: httpsPort });
    const store = new LocalChallengeStore();
    const published: ChallengeAnswer[] = [];
    const publish = store.publish.bind(store);
    store.publish = (answer) => {
      published.push(answer);
      return publish(answer);
    };
    const gw = await startAcmeGateway(t, {
      httpPort,
      httpsPort,
      httpMode: 'off',
      challenges: store,
      acme: { directoryUrl: pebble.directoryUrl, caFile: pebble.caFile, challenges: ['tls-alpn-01'] },
    });
    await until('the first ACME certificate', () => gw.served.length > 0, 30_000);
    assert.deepEqual(
      published.map((a) => [a.type, a.identifier]),
      [['tls-alpn-01', NAME]],
    );
    assert.equal(store.tlsAlpnAnswer(NAME), undefined, 'the answer is withdrawn after validation');
    const peer = await peerCertificate(httpsPort);
    assert.match(String(peer.issuer.CN), /Pebble/i);
    assert.equal(peer.subjectaltname, `DNS:${NAME}`);
    // An acme-tls/1 handshake without a live challenge fails rather than get the real certificate.
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = connect(
          {
            host: '127.0.0.1',
            port: httpsPort,
            servername: NAME,
            ALPNProtocols: ['acme-tls/1'],
            rejectUnauthorized: false,
          },
          () => resolve(s.alpnProtocol),
        );
        s.on('error', reject);
      }),
    );
  });

  test('renewal of short-lived certificates keeps an open keep-alive connection; expiry fails /readyz', async (t) => {
    const [httpPort, httpsPort] = await Promise.all([freePort(), freePort()]);
    const pebble = await startPebble(t, { httpPort, tlsPort: httpsPort, validitySeconds: 12 });
    const gw = await startAcmeGateway(t, {
      httpPort,
      httpsPort,
      httpMode: 'serve',
      acme: {
        directoryUrl: pebble.directoryUrl,
        caFile: pebble.caFile,
        challenges: ['http-01'],
        renewFraction: 0.3,
      },
    });
    await until('the first ACME certificate', () => gw.served.length > 0, 30_000);
    await until('/readyz 200', async () => (await httpGet(httpPort, '/readyz')).status === 200, 10_000, 100);

    const agent = new Agent({
      keepAlive: true,
      maxSockets: 1,
      ca: [gw.served[0]!.certPem],
      rejectUnauthorized: false,
    });
    t.after(() => agent.destroy());
    const first = await httpsGet(agent, httpsPort, '/healthz');
    assert.equal(first.status, 200);
    await until('a renewed certificate', () => gw.served.length > 1, 30_000, 100);
    const renewed = gw.served[1]!;
    assert.notEqual(
      new X509Certificate(renewed.certPem).serialNumber,
      new X509Certificate(gw.served[0]!.certPem).serialNumber,
    );
    const sameSocket = await httpsGet(agent, httpsPort, '/healthz');
    assert.equal(sameSocket.status, 200);
    assert.equal(sameSocket.localPort, first.localPort, 'the keep-alive connection was not dropped');
    assert.equal(sameSocket.serial, first.serial, 'the open connection keeps its certificate');
    const fresh = await peerCertificate(httpsPort);
    assert.equal(
      fresh.serialNumber,
      new X509Certificate(renewed.certPem).serialNumber,
      'new handshakes get the new one',
    );

    // The CA goes away: renewals fail as unreachable, and once the certificate expires /readyz fails.
    pebble.stop();
    const expiresAt = gw.served.at(-1)!.notAfter.getTime();
    await until(
      'CA_UNREACHABLE logged',
      () => loggedCodes(gw.log).includes(errors.ACME_CA_UNREACHABLE.code),
      30_000,
      100,
    );
    await until('the certificate to expire', () => Date.now() > expiresAt + 500, 30_000, 200);
    const ready = await httpGet(httpPort, '/readyz');
    assert.equal(ready.status, 503);
    assert.match(ready.body, /certificate expired/);
  });

  test('CA unreachable: logged with its code, /readyz 503 with no certificate', async (t) => {
    const [httpPort, httpsPort, closedPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const gw = await startAcmeGateway(t, {
      httpPort,
      httpsPort,
      httpMode: 'serve',
      acme: { directoryUrl: `https://127.0.0.1:${closedPort}/dir` },
    });
    await until('two failed attempts', () => loggedCodes(gw.log).length >= 2, 10_000);
    assert.deepEqual(new Set(loggedCodes(gw.log)), new Set([errors.ACME_CA_UNREACHABLE.code]));
    const retries = gw.log
      .lines()
      .filter((l) => l.code !== undefined)
      .map((l) => l.retryInMs as number);
    assert.ok(
      retries[0]! <= 200 && retries[1]! <= 400 && retries[1]! >= 200,
      `backoff ${retries.join(', ')}`,
    );
    const ready = await httpGet(httpPort, '/readyz');
    assert.equal(ready.status, 503);
    assert.match(ready.body, /no certificate/);
    assert.equal(gw.served.length, 0);
  });

  test('challenge failed: a store that withholds the answer', async (t) => {
    const [httpPort, httpsPort] = await Promise.all([freePort(), freePort()]);
    const pebble = await startPebble(t, { httpPort, tlsPort: httpsPort });
    const store = new LocalChallengeStore();
    store.publish = () => Promise.resolve();
    const gw = await startAcmeGateway(t, {
      httpPort,
      httpsPort,
      challenges: store,
      acme: { directoryUrl: pebble.directoryUrl, caFile: pebble.caFile, challenges: ['http-01'] },
    });
    await until(
      'CHALLENGE_FAILED logged',
      () => loggedCodes(gw.log).includes(errors.ACME_CHALLENGE_FAILED.code),
      30_000,
      100,
    );
    assert.deepEqual(new Set(loggedCodes(gw.log)), new Set([errors.ACME_CHALLENGE_FAILED.code]));
    assert.equal(gw.served.length, 0);
  });

  test('rate limited: a CA answering 429 rateLimited', async (t) => {
    const ca = createServer((req, res) => {
      const base = `http://127.0.0.1:${(ca.address() as AddressInfo).port}`;
      if (req.url === '/dir') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            newNonce: `${base}/nonce`,
            newAccount: `${base}/account`,
            newOrder: `${base}/order`,
          }),
        );
        return;
      }
      if (req.url === '/nonce') {
        res.writeHead(200, { 'replay-nonce': `n${Date.now()}`, 'cache-control': 'no-store' }).end();
        return;
      }
      req.resume();
      res.writeHead(429, {
        'content-type': 'application/problem+json',
        'replay-nonce': `n${Date.now()}`,
        'retry-after': '1',
      });
      res.end(
        JSON.stringify({
          type: 'urn:ietf:params:acme:error:rateLimited',
          detail: 'too many new accounts',
          status: 429,
        }),
      );
    });
    await new Promise<void>((resolve) => ca.listen(0, '127.0.0.1', resolve));
    t.after(() => ca.close());
    const [httpPort, httpsPort] = await Promise.all([freePort(), freePort()]);
    const gw = await startAcmeGateway(t, {
      httpPort,
      httpsPort,
      acme: { directoryUrl: `http://127.0.0.1:${(ca.address() as AddressInfo).port}/dir` },
    });
    await until(
      'RATE_LIMITED logged',
      () => loggedCodes(gw.log).includes(errors.ACME_RATE_LIMITED.code),
      10_000,
    );
    const line = gw.log.lines().find((l) => l.code === errors.ACME_RATE_LIMITED.code)!;
    assert.match(String(line.err), /too many new accounts/);
    assert.deepEqual(new Set(loggedCodes(gw.log)), new Set([errors.ACME_RATE_LIMITED.code]));
  });
});
