// The ACME pieces that need no CA: how a failed order is classified, what the state folder's
// certificate does to readiness, and the HTTP-01 answer on the request path.
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { validateConfig } from '../../config/load.js';
import { LocalChallengeStore } from '../../gateway/acme/challenges.js';
import { classifyAcmeFailure } from '../../gateway/acme/failures.js';
import { AcmeManager, type ServedCertificate } from '../../gateway/acme/manager.js';
import { answerChallenge } from '../../gateway/steps/acme-challenge.js';
import { errors } from '../../lib/errors.js';
import { generatePki } from '../../lib/pki.js';
import { silentLogger } from '../../lib/log.js';
import { tempDir } from '../helpers/files.js';

const NAME = 'gw.nonstop.test';

describe('ACME failures', () => {
  const failure = new Error('the CA said no');
  test('429 or rateLimited is RATE_LIMITED, whatever the phase', () => {
    assert.equal(
      classifyAcmeFailure(failure, [{ status: 429 }], 'order').code,
      errors.ACME_RATE_LIMITED.code,
    );
    const typed = [{ status: 403, type: 'urn:ietf:params:acme:error:rateLimited' }];
    assert.equal(classifyAcmeFailure(failure, typed, 'challenge').code, errors.ACME_RATE_LIMITED.code);
  });
  test('no answer, or a 5xx, is CA_UNREACHABLE, and names the URL', () => {
    const err = classifyAcmeFailure(new TypeError('x'), [{ network: 'https://ca.test/dir' }], 'account');
    assert.equal(err.code, errors.ACME_CA_UNREACHABLE.code);
    assert.match(err.message, /no answer from https:\/\/ca\.test\/dir/);
    assert.equal(
      classifyAcmeFailure(failure, [{ status: 503 }], 'order').code,
      errors.ACME_CA_UNREACHABLE.code,
    );
  });
  test('a refusal while validating is CHALLENGE_FAILED; elsewhere ORDER_FAILED', () => {
    assert.equal(classifyAcmeFailure(failure, [], 'challenge').code, errors.ACME_CHALLENGE_FAILED.code);
    const refused = classifyAcmeFailure(
      failure,
      [{ status: 400, type: 'urn:ietf:params:acme:error:malformed' }],
      'order',
    );
    assert.equal(refused.code, errors.ACME_ORDER_FAILED.code);
    assert.deepEqual(refused.details, {
      phase: 'order',
      problem: { status: 400, type: 'urn:ietf:params:acme:error:malformed' },
    });
  });
});

describe('ACME state', () => {
  test('a saved certificate is served and makes the gateway ready until it expires', async (t) => {
    const stateDir = join(tempDir(t), 'state');
    const pki = await generatePki({ dir: join(tempDir(t), 'pki'), gateways: ['gw1'], gatewayNames: [NAME] });
    const config = validateConfig('gateway', 'g.json', {
      kind: 'gateway',
      id: 'gw1',
      routes: '/nonexistent/routes.json',
      https: { acme: { directoryUrl: 'http://127.0.0.1:9/dir', domains: [NAME], stateDir } },
    }).https!.acme!;
    const start = (now: number) => {
      const served: ServedCertificate[] = [];
      const manager = new AcmeManager({
        config,
        store: new LocalChallengeStore(),
        log: silentLogger(),
        onCertificate: (c) => served.push(c),
        now: () => now,
      });
      manager.start();
      t.after(() => manager.stop());
      return { manager, served };
    };
    // start() made the folder; put a certificate in it as an order would.
    const probe = start(Date.now());
    await probe.manager.stop();
    copyFileSync(pki.gateways.gw1!.key, join(stateDir, 'key.pem'));
    copyFileSync(pki.gateways.gw1!.cert, join(stateDir, 'cert.pem'));

    const fresh = start(Date.now());
    assert.equal(fresh.served[0]?.source, 'state');
    assert.deepEqual(fresh.manager.readiness(), { ok: true });
    const notAfter = fresh.served[0].notAfter.getTime();

    const late = start(notAfter + 1000);
    assert.equal(late.served.length, 0, 'an expired certificate is not served');
    assert.deepEqual(late.manager.readiness(), {
      ok: false,
      reason: 'no certificate yet (ACME order pending)',
    });
  });
});

describe('HTTP-01 answers', () => {
  test('a live token gets its key authorization as text/plain; anything else 404', async (t) => {
    const store = new LocalChallengeStore();
    await store.publish({
      type: 'http-01',
      identifier: NAME,
      token: 'tok_EN-1',
      keyAuthorization: 'tok_EN-1.thumb',
      expiresAt: Date.now() + 60_000,
    });
    const server = createServer((req, res) => {
      void answerChallenge(store, req, res, req.url ?? '/').then((answered) => {
        if (!answered) res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => server.close());
    const port = (server.address() as AddressInfo).port;
    const get = (path: string, method = 'GET') =>
      new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }),
          );
        });
        req.on('error', reject);
        req.end();
      });
    const ok = await get('/.well-known/acme-challenge/tok_EN-1');
    assert.deepEqual([ok.status, ok.body], [200, 'tok_EN-1.thumb']);
    assert.match(ok.type, /^text\/plain/);
    assert.equal((await get('/.well-known/acme-challenge/tok_EN-1', 'POST')).status, 404);
    assert.equal((await get('/.well-known/acme-challenge/tok.EN')).status, 404, 'not base64url');
    assert.equal((await get('/.well-known/acme-challenge/other')).status, 404);
    assert.equal((await get('/notes')).status, 204, 'other paths go on');
  });
});
