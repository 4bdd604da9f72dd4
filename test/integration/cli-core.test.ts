// `nonstop core` and `nonstop keygen` as an operator runs them.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { readIdempotencySecret } from '../../gateway/idempotency-secret.js';
import { EXAMPLE_ROUTES_FILE } from '../helpers/core.js';
import { finished, runCli, startCli, waitForLogLine } from '../helpers/cli.js';
import { httpsJson } from '../helpers/https.js';
import { usePki, type TestPki } from '../helpers/pki.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nonstop-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function writeCoreConfig(dir: string, pki: TestPki, application = 'notes'): Promise<string> {
  const file = join(dir, 'core.json');
  const config = {
    kind: 'core',
    routes: EXAMPLE_ROUTES_FILE,
    listen: { host: '127.0.0.1', port: 0 },
    tls: { ca: pki.ca.cert, cert: pki.core.cert, key: pki.core.key },
    application,
  };
  await writeFile(file, JSON.stringify(config));
  return file;
}

describe('nonstop core', () => {
  const pki = usePki();

  test('serves until SIGTERM, then stops cleanly with exit code 0', async (t) => {
    const config = await writeCoreConfig(await tempDir(t), pki());
    const child = startCli(['core', '--config', config]);
    t.after(() => child.kill('SIGKILL'));
    const exit = finished(child);
    const listening = await waitForLogLine(child, (l) => l.msg === 'core listening');
    const address = { host: String(listening.host), port: Number(listening.port) };
    const health = await httpsJson(
      address,
      { ca: pki().pem(pki().ca).cert, ...pki().pem(pki().brokers.b1!) },
      {
        path: '/healthz',
      },
    );
    assert.equal(health.status, 200);
    child.kill('SIGTERM');
    const result = await exit;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /"msg":"core stopped"/);
  });

  test('fails at start, naming the routes an application has no handler for', async (t) => {
    const dir = await tempDir(t);
    const app = join(dir, 'partial.mjs');
    await writeFile(
      app,
      `export default { name: 'partial', migrations: [], handlers: { 'notes.get': async () => ({ status: 200 }) } };\n`,
    );
    // Relative to the config file's folder, not to the working directory.
    const result = await runCli(['core', '--config', await writeCoreConfig(dir, pki(), './partial.mjs')]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no handler for route\(s\) notes\.create, notes\.list, notes\.delete/);
  });

  test('fails at start on a config error, naming the file and field', async (t) => {
    const dir = await tempDir(t);
    const file = join(dir, 'core.json');
    await writeFile(file, JSON.stringify({ kind: 'core', routes: 'routes.json', tls: { ca: 'ca.crt' } }));
    const result = await runCli(['core', '--config', file]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /core\.json: field "tls\.cert" is required/);
  });
});

describe('nonstop keygen', () => {
  test('writes the requested files, then keeps them', async (t) => {
    const out = join(await tempDir(t), 'pki');
    const first = await runCli(['keygen', '--out', out, '--brokers', 'b1,b2', '--gateways', 'gw1']);
    assert.equal(first.code, 0, first.stderr);
    for (const name of ['ca', 'core', 'broker-b1', 'broker-b2', 'public-ca', 'gateway-gw1']) {
      assert.ok(existsSync(join(out, `${name}.crt`)) && existsSync(join(out, `${name}.key`)), name);
    }
    assert.equal(first.stdout.match(/^wrote /gm)?.length, 13);
    assert.doesNotMatch(first.stdout + first.stderr, /PRIVATE KEY/);
    // The gateways' shared idempotency secret: 0600, and what a gateway accepts.
    const secret = join(out, 'idempotency.secret');
    assert.equal(statSync(secret).mode & 0o777, 0o600);
    assert.equal(readIdempotencySecret(secret).length, 32);
    const secretBefore = readFileSync(secret, 'utf8');
    const second = await runCli(['keygen', '--out', out, '--brokers', 'b1,b2', '--gateways', 'gw1']);
    assert.equal(second.code, 0);
    assert.match(second.stdout, /nothing written/);
    assert.equal(readFileSync(secret, 'utf8'), secretBefore, 'kept: a new one would split retries');
  });

  test('refuses a bad id with exit code 1 and a usage error with exit code 2', async (t) => {
    const out = join(await tempDir(t), 'pki');
    const bad = await runCli(['keygen', '--out', out, '--brokers', 'B/1']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /broker ids must be/);
    const usage = await runCli(['keygen']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--out DIR/);
    const help = await runCli(['keygen', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--core-names/);
  });
});
