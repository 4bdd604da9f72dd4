// The certificates between brokers and the core rotated without a restart (README, "Rotating
// credentials"): both sides trust the old and the new CA, switch to certificates from the new
// one, then forget the old. The core rereads its files on reloadTls (SIGHUP), the broker's
// CoreClient when they changed; requests go on throughout, and a client certificate from the
// old CA is refused at the end. Files that do not load keep the ones in use.
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CoreClient } from '../../broker/core-client.js';
import { startCore } from '../../core/server.js';
import { silentLogger } from '../../lib/log.js';
import { testCoreConfig, testDatabaseConfig } from '../helpers/core.js';
import { makeEnvelope } from '../helpers/envelope.js';
import { tempDir } from '../helpers/files.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

const create = (title: string) =>
  makeEnvelope({ route: 'notes.create', method: 'POST', path: '/notes', body: { title } });

describe('broker/core certificates rotated under requests', () => {
  let oldPki: TestPki;
  let newPki: TestPki;
  before(async () => {
    [oldPki, newPki] = await Promise.all([createTestPki(), createTestPki()]);
  });
  after(async () => {
    await oldPki?.remove();
    await newPki?.remove();
  });

  test('trust both, switch, forget the old: every request answered, the old client refused', async (t) => {
    const dir = tempDir(t);
    const file = (name: string) => join(dir, name);
    const core = { ca: file('core-ca.crt'), cert: file('core.crt'), key: file('core.key') };
    const broker = { ca: file('broker-ca.crt'), cert: file('broker.crt'), key: file('broker.key') };
    copyFileSync(oldPki.ca.cert, core.ca);
    copyFileSync(oldPki.core.cert, core.cert);
    copyFileSync(oldPki.core.key, core.key);
    copyFileSync(oldPki.ca.cert, broker.ca);
    copyFileSync(oldPki.brokers.b1!.cert, broker.cert);
    copyFileSync(oldPki.brokers.b1!.key, broker.key);
    const config = testCoreConfig(oldPki, await testDatabaseConfig(t, 'pglite'));
    const running = await startCore({ ...config, tls: { ...config.tls, ...core } }, silentLogger());
    t.after(() => running.close());
    const url = `https://127.0.0.1:${running.address.port}`;
    const client = new CoreClient(
      {
        url,
        peers: [],
        ca: broker.ca,
        cert: broker.cert,
        key: broker.key,
        maxSockets: 8,
        attemptTimeoutMs: 2000,
      },
      silentLogger(),
    );
    t.after(() => client.close());
    let n = 0;
    const answered = async () => assert.equal((await client.execute(create(`rotation-${n++}`))).status, 201);
    await answered();

    const both = readFileSync(oldPki.ca.cert, 'utf8') + readFileSync(newPki.ca.cert, 'utf8');
    writeFileSync(core.ca, both);
    assert.equal(running.reloadTls(), true);
    await answered();
    writeFileSync(broker.ca, both);
    assert.equal(client.reloadTlsIfChanged(), true);
    assert.equal(client.reloadTlsIfChanged(), false, 'unchanged files: nothing to do');
    await answered();

    copyFileSync(newPki.core.cert, core.cert);
    copyFileSync(newPki.core.key, core.key);
    assert.equal(running.reloadTls(), true);
    await answered();
    copyFileSync(newPki.brokers.b1!.cert, broker.cert);
    copyFileSync(newPki.brokers.b1!.key, broker.key);
    assert.equal(client.reloadTlsIfChanged(), true);
    await answered();

    copyFileSync(newPki.ca.cert, core.ca);
    assert.equal(running.reloadTls(), true);
    copyFileSync(newPki.ca.cert, broker.ca);
    assert.equal(client.reloadTlsIfChanged(), true);
    await answered();

    // A client certificate from the old CA, even with the new CA for the server: refused.
    const attempt = (cert: { cert: Buffer; key: Buffer }) =>
      new Promise<number | string>((resolve) => {
        const req = https.request(
          `${url}/`,
          { ca: readFileSync(newPki.ca.cert), ...cert, agent: false, minVersion: 'TLSv1.3' },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
        req.end();
      });
    assert.equal(
      typeof (await attempt(oldPki.pem(oldPki.brokers.b1!))),
      'string',
      'the old client gets no answer',
    );
    assert.equal(
      typeof (await attempt(newPki.pem(newPki.brokers.b1!))),
      'number',
      'the new client is answered',
    );

    // Files that do not load are refused on reload; what is in use stays in use.
    writeFileSync(core.key, 'not a key');
    assert.equal(running.reloadTls(), false);
    writeFileSync(broker.key, 'not a key');
    assert.equal(client.reloadTlsIfChanged(), false);
    await answered();
  });
});
