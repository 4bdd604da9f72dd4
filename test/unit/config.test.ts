import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig, validateConfig } from '../../config/load.js';
import { loadRoutes, parseRoutes } from '../../config/routes.js';
import { isNonstopError } from '../../lib/errors.js';
import { exampleRoutesFile, repoRoot, tempDir, writeJson } from '../helpers/files.js';

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isNonstopError(err), `expected a NonstopError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('expected an error');
}

const example = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(repoRoot, 'config/examples', name), 'utf8')) as Record<string, unknown>;

test('example configs load, with defaults filled in and paths resolved', () => {
  const gw = loadConfig('gateway', join(repoRoot, 'config/examples/gateway.json'));
  assert.equal(gw.id, 'gw1');
  assert.equal(gw.limits.maxHeaders, 64);
  assert.equal(gw.routes, join(repoRoot, 'config/examples/routes.json'));
  assert.equal(gw.idempotency.secretFile, join(repoRoot, 'config/examples/pki/idempotency.secret'));
  assert.equal(gw.limits.ipv6PrefixLength, 64);
  assert.equal(gw.https?.profile, 'intermediate');
  assert.deepEqual(gw.https?.hsts, { maxAge: 31536000, includeSubDomains: false, preload: false });
  assert.ok(Object.isFrozen(gw.limits));
  const core = loadConfig('core', join(repoRoot, 'config/examples/core.json'));
  assert.equal(core.tls.brokerUnit, 'nonstop-broker');
  assert.equal(core.database.url, undefined);
});

test('a wrong type names the file, the field and what was expected', (t) => {
  const file = writeJson(tempDir(t), 'gw.json', {
    ...example('gateway.json'),
    limits: { maxBodyBytes: 'lots' },
  });
  assert.match(
    messageOf(() => loadConfig('gateway', file)),
    /gw\.json: field "limits\.maxBodyBytes" must be integer/,
  );
});

test('a missing field, an unknown field and a bad enum are each reported', () => {
  const { core: _core, ...noCore } = example('broker.json');
  assert.match(
    messageOf(() => validateConfig('broker', 'b.json', noCore)),
    /b\.json: field "core" is required/,
  );
  assert.match(
    messageOf(() => validateConfig('broker', 'b.json', { ...example('broker.json'), concurency: 3 })),
    /b\.json: field "concurency" is not a known field/,
  );
  assert.match(
    messageOf(() =>
      validateConfig('gateway', 'g.json', { ...example('gateway.json'), http: { mode: 'sometimes' } }),
    ),
    /g\.json: field "http\.mode" must be one of "redirect", "serve", "off"/,
  );
  assert.match(
    messageOf(() =>
      validateConfig('broker', 'b.json', { ...example('broker.json'), gateways: [{ id: 'GW 1' }] }),
    ),
    /b\.json: field "gateways\[0\]\.id" must match pattern/,
  );
});

test('a file of the wrong kind, broken JSON and a missing file fail clearly', (t) => {
  const dir = tempDir(t);
  const coreFile = writeJson(dir, 'core.json', example('core.json'));
  assert.match(
    messageOf(() => loadConfig('gateway', coreFile)),
    /core\.json: field "kind" must be "gateway" here \(got "core"\)/,
  );
  const broken = join(dir, 'broken.json');
  writeFileSync(broken, '{ "kind": "gateway", ');
  assert.match(
    messageOf(() => loadConfig('gateway', broken)),
    /broken\.json: not valid JSON/,
  );
  assert.match(
    messageOf(() => loadConfig('gateway', join(dir, 'absent.json'))),
    /absent\.json: cannot read config file \(ENOENT\)/,
  );
});

test('the example route table loads and compiles', () => {
  const routes = loadRoutes(exampleRoutesFile);
  assert.deepEqual(
    routes.routes.map((r) => r.name),
    ['notes.create', 'notes.get', 'notes.list', 'notes.delete'],
  );
});

test('an empty route table is refused', () => {
  assert.match(
    messageOf(() => parseRoutes('r.json', { kind: 'routes', routes: [] })),
    /r\.json: field "routes" must NOT have fewer than 1 items/,
  );
});
