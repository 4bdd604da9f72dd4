// The host-config builders (config/render/) decide every setting that guards a host, refuse
// what would open one, and the world's configs differ from the deployed ones only where
// world/host-configs.ts declares it.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { renderArtefact, renderCommand } from '../../cli/render.js';
import { brokerDocument, type BrokerInput } from '../../config/render/broker.js';
import { coreDocument, type CoreInput } from '../../config/render/core.js';
import { ACME_STATE_DIR, gatewayDocument, type GatewayInput } from '../../config/render/gateway.js';
import { guardDocument, type GuardInput } from '../../config/render/guard.js';
import { knockProfilesDocument } from '../../config/render/knock.js';
import {
  WORLD_CONFIG_DIFFERENCES,
  worldBrokerInput,
  worldCoreInput,
  worldGatewayInput,
  worldGuardInput,
} from '../../world/host-configs.js';
import { configDifferences, declares, undeclaredDifferences } from '../helpers/config-diff.js';

const SECRET = 'A'.repeat(43);
const FINGERPRINT = `SHA256:${'b'.repeat(43)}`;
const gatewayFacts = {
  id: 'gw1',
  configDir: '/etc/nonstop',
  tunnels: [
    { broker: 'broker1', port: 6380 },
    { broker: 'broker2', port: 6381 },
  ],
} satisfies GatewayInput;
const brokerFacts = {
  id: 'broker1',
  configDir: '/etc/nonstop',
  gateways: [
    { id: 'gw1', address: '198.51.100.10', hostKeyFingerprint: FINGERPRINT, remotePort: 6380 },
    { id: 'gw2', address: 'gw2.example.net', hostKeyFingerprint: FINGERPRINT, remotePort: 6380 },
  ],
  core: { url: 'https://10.0.0.30:9443', serverName: 'core' },
} satisfies BrokerInput;
const gatewayGuard = {
  role: 'gateway',
  id: 'gw1',
  clients: [{ name: 'broker1', secret: SECRET }],
} satisfies GuardInput;
const coreFacts = { configDir: '/etc/nonstop', privateAddress: '10.0.0.30', port: 9443 };
const corePostgres = {
  ...coreFacts,
  database: { postgres: { user: 'nonstop-core', database: 'nonstop', port: 5432 } },
} satisfies CoreInput;

describe('host-config builders', () => {
  test('gateway: dual-stack listeners, HTTPS from the role files, its own Redis user on the tunnels', () => {
    const doc = gatewayDocument(gatewayFacts);
    assert.deepEqual(doc.http, { host: '::', port: 80, mode: 'redirect' });
    assert.deepEqual(doc.https, {
      host: '::',
      port: 443,
      cert: '/etc/nonstop/tls/gateway.crt',
      key: '/etc/nonstop/tls/gateway.key',
    });
    assert.equal(doc.redis.username, 'nonstop-gw-gw1');
    assert.equal(doc.redis.passwordFile, '/etc/nonstop/redis-password');
    assert.deepEqual(doc.redis.endpoints, [
      { host: '127.0.0.1', port: 6380 },
      { host: '127.0.0.1', port: 6381 },
    ]);
    assert.deepEqual(doc.idempotency, { secretFile: '/etc/nonstop/idempotency-secret' });
    assert.ok(Object.isFrozen(doc.redis));
    assert.throws(() => gatewayDocument({ ...gatewayFacts, tunnels: [] }), /field "redis\.endpoints"/);
    assert.throws(
      () => gatewayDocument({ ...gatewayFacts, limits: { ratePerSecond: 0 } }),
      /gateway\.json of gw1: field "limits\.ratePerSecond"/,
    );
  });

  test("gateway with ACME: the state folder under the unit's StateDirectory; the TLS files only when installed", () => {
    const acme = { directoryUrl: 'https://acme.example/dir', domains: ['www.example.net'] };
    const alone = gatewayDocument({ ...gatewayFacts, acme, tlsFiles: false });
    assert.deepEqual(alone.https, {
      host: '::',
      port: 443,
      acme: { stateDir: ACME_STATE_DIR, ...acme },
    });
    const withFiles = gatewayDocument({ ...gatewayFacts, acme });
    assert.equal(withFiles.https.cert, '/etc/nonstop/tls/gateway.crt');
    assert.equal(withFiles.https.acme?.stateDir, '/var/lib/nonstop-gateway/acme');
    assert.throws(
      () => gatewayDocument({ ...gatewayFacts, acme: { ...acme, domains: ['WWW.example.net'] } }),
      /gateway\.json of gw1: field "https\.acme\.domains\[0\]"/,
    );
  });

  test('guard: a gateway lets in its web ports, a broker none; the table stays when it stops', () => {
    const gw = guardDocument({ ...gatewayGuard, httpsPort: 8443 });
    assert.deepEqual(gw.publicTcpPorts, [80, 8443]);
    assert.equal(gw.removeTableOnExit, false);
    assert.equal(gw.gateway, 'gw1');
    assert.deepEqual(gw.rotating.clients, [{ name: 'broker1', secret: SECRET }]);
    assert.equal((gw as { spa?: unknown }).spa, undefined, 'no SPA clients, no SPA port');
    const spaClient = {
      name: 'broker1',
      key: Buffer.alloc(32, 1).toString('base64'),
      hmacKey: Buffer.alloc(64, 2).toString('base64'),
    };
    const spa = guardDocument({ ...gatewayGuard, clients: [], spaClients: [spaClient], spaPort: 62202 });
    assert.deepEqual(spa.spa, { port: 62202, clients: [spaClient] });
    // An admin with only SPA keys can still open a broker's SSH.
    assert.equal(
      guardDocument({ role: 'broker', id: 'broker1', spaClients: [spaClient] }).spa?.clients.length,
      1,
    );
    const admin = { name: 'ops', sequence: ['7101', '8101:udp', '9101'] };
    const broker = guardDocument({ role: 'broker', id: 'broker1', static: [admin] });
    assert.deepEqual(broker.publicTcpPorts, []);
    assert.equal(broker.removeTableOnExit, false);
    assert.equal(broker.sshPort, 22);
    assert.throws(
      () => guardDocument({ role: 'broker', id: 'broker1' }),
      /guard\.json of broker1: field "clients" \(or "static", "spaClients"\) must name an admin knock/,
    );
    assert.throws(
      () => guardDocument({ role: 'broker', id: 'broker1', static: [admin], httpPort: 80 }),
      /field "httpPort" is for role "gateway" only/,
    );
    assert.throws(
      () => guardDocument({ ...gatewayGuard, clients: [{ name: 'broker1', secret: 'short' }] }),
      /field "rotating\.clients\[0\]\.secret"/,
    );
  });

  test('broker: each gateway its own loopback Redis, a pinned key and a rotating knock', () => {
    const doc = brokerDocument({ ...brokerFacts, rotation: { stepSeconds: 60 } });
    assert.deepEqual(doc.redis, { host: '127.0.0.1', port: 6401, username: 'nonstop-broker' });
    assert.deepEqual(
      doc.gateways.map((g) => g.redis),
      [
        { port: 6401, passwordFile: '/etc/nonstop/redis/gw1/nonstop-broker.password' },
        { port: 6402, passwordFile: '/etc/nonstop/redis/gw2/nonstop-broker.password' },
      ],
    );
    const ssh = doc.gateways[0]!.ssh;
    assert.equal(ssh.user, 'nonstop-tunnel');
    assert.equal(ssh.privateKey, '/etc/nonstop/ssh/id_ed25519');
    assert.deepEqual(ssh.knock, {
      rotating: { client: 'broker1', secretFile: '/etc/nonstop/knock/gw1.secret', stepSeconds: 60 },
    });
    assert.equal(doc.core.ca, '/etc/nonstop/tls/ca.crt');
    // Further core hosts on the same database: none unless given; each an https URL.
    assert.equal((doc.core as { peers?: unknown }).peers, undefined);
    const peered = brokerDocument({
      ...brokerFacts,
      core: { ...brokerFacts.core, peers: ['https://10.0.0.31:9443'] },
    });
    assert.deepEqual(peered.core.peers, ['https://10.0.0.31:9443']);
    assert.throws(
      () =>
        brokerDocument({ ...brokerFacts, core: { ...brokerFacts.core, peers: ['http://10.0.0.31:9443'] } }),
      /peers\[0\]/,
    );
    assert.deepEqual(doc.status, { host: '127.0.0.1', port: 9100 }, 'a status listener on loopback');
    assert.equal(brokerDocument({ ...brokerFacts, statusPort: null }).status, undefined, 'null: none');
    const unknocked = brokerDocument({
      ...brokerFacts,
      gateways: [{ ...brokerFacts.gateways[0]!, knock: false, redisPort: 7000 }],
    });
    assert.equal(unknocked.gateways[0]!.ssh.knock, undefined);
    const bySpa = brokerDocument({
      ...brokerFacts,
      gateways: [{ ...brokerFacts.gateways[0]!, knock: 'spa' }],
    });
    assert.deepEqual(bySpa.gateways[0]!.ssh.knock, { spa: { keyFile: '/etc/nonstop/knock/gw1.spa' } });
    assert.equal(unknocked.gateways[0]!.redis.port, 7000);
    // The names a gateway serves (the ACME relay's): none unless given; DNS names only.
    assert.equal(doc.gateways[0]!.names, undefined);
    const named = brokerDocument({
      ...brokerFacts,
      gateways: [{ ...brokerFacts.gateways[0]!, names: ['www.example.net'] }],
    });
    assert.deepEqual(named.gateways[0]!.names, ['www.example.net']);
    assert.throws(
      () =>
        brokerDocument({
          ...brokerFacts,
          gateways: [{ ...brokerFacts.gateways[0]!, names: ['198.51.100.10'] }],
        }),
      /field "gateways\/0\/names\/0"|gateways\[0\]\.names\[0\]|names/,
    );
    assert.throws(
      () => brokerDocument({ ...brokerFacts, core: { url: 'http://10.0.0.30:9443' } }),
      /broker\.json of broker1: field "core\.url"/,
    );
  });

  test('core: the private address only, PostgreSQL over its socket; never a wildcard address', () => {
    const doc = coreDocument(corePostgres);
    assert.deepEqual(doc.listen, { host: '10.0.0.30', port: 9443 });
    assert.equal(doc.database.url, 'postgresql://nonstop-core@/nonstop?host=/var/run/postgresql&port=5432');
    assert.deepEqual(doc.tls, {
      ca: '/etc/nonstop/tls/ca.crt',
      cert: '/etc/nonstop/tls/core.crt',
      key: '/etc/nonstop/tls/core.key',
    });
    for (const wildcard of ['0.0.0.0', '::', 'core.example.internal'])
      assert.throws(
        () => coreDocument({ ...corePostgres, privateAddress: wildcard }),
        /field "privateAddress" must be the core's own private IP address/,
        wildcard,
      );
    assert.deepEqual(coreDocument(worldCoreInput(coreFacts)).database, { dataDir: '/etc/nonstop/db' });
  });

  test('knock profiles: one per gateway, named by it unless told, this client and its secret', () => {
    const doc = knockProfilesDocument({
      client: 'broker1',
      gateways: [
        { id: 'gw1', address: '198.51.100.10', secret: SECRET },
        { id: 'gw2', address: 'gw2.example.net', secret: SECRET, profile: 'admin-gw2', sshPort: 2222 },
      ],
    });
    assert.deepEqual(Object.keys(doc.profiles), ['gw1', 'admin-gw2']);
    assert.deepEqual(doc.profiles['admin-gw2'], {
      host: 'gw2.example.net',
      sshPort: 2222,
      rotating: { gateway: 'gw2', client: 'broker1', secret: SECRET },
    });
  });
});

describe('the world against the deployment', () => {
  // The same facts through the deployed input (Ansible passes the builders' defaults) and the world's.
  const pairs = [
    {
      kind: 'gateway',
      world: gatewayDocument(worldGatewayInput(gatewayFacts)),
      deployed: gatewayDocument(gatewayFacts),
    },
    {
      kind: 'guard',
      world: guardDocument(worldGuardInput(gatewayGuard, '/tmp/nst-1-abcdef-XYZ/gw1')),
      deployed: guardDocument(gatewayGuard),
    },
    {
      kind: 'broker',
      world: brokerDocument(worldBrokerInput(brokerFacts)),
      deployed: brokerDocument(brokerFacts),
    },
    { kind: 'core', world: coreDocument(worldCoreInput(coreFacts)), deployed: coreDocument(corePostgres) },
  ] as const;

  for (const { kind, world, deployed } of pairs)
    test(`${kind}: every difference is declared, and every declared one is real`, () => {
      const declared: Readonly<Record<string, string>> = WORLD_CONFIG_DIFFERENCES[kind];
      assert.deepEqual(undeclaredDifferences(kind, world, deployed, declared), []);
      const differences = configDifferences(kind, world, deployed);
      for (const [key, reason] of Object.entries(declared)) {
        assert.ok(reason.length > 10, `${key} has a reason`);
        assert.ok(
          differences.some((d) => declares(key, d.path)),
          `${kind}: "${key}" is declared but the world does not differ there`,
        );
      }
    });

  test("core on the world's PostgreSQL (corePostgres): the deployed server, its socket in the world's folder", () => {
    const socketDir = '/tmp/nst-1-abcdef-XYZ/postgres';
    const world = coreDocument(worldCoreInput(coreFacts, { ...corePostgres.database.postgres, socketDir }));
    const deployed = coreDocument(corePostgres);
    assert.deepEqual(undeclaredDifferences('core', world, deployed, WORLD_CONFIG_DIFFERENCES.core), []);
    const differences = configDifferences('core', world, deployed);
    assert.deepEqual(
      differences.find((d) => d.path === 'database.url'),
      {
        path: 'database.url',
        world: `postgresql://nonstop-core@/nonstop?host=${socketDir}&port=5432`,
        deployed: 'postgresql://nonstop-core@/nonstop?host=/var/run/postgresql&port=5432',
      },
    );
    assert.ok(!differences.some((d) => d.path.startsWith('database.') && d.path !== 'database.url'));
  });

  test('an undeclared difference is caught, with both values', () => {
    const world = gatewayDocument({ ...worldGatewayInput(gatewayFacts), listenHost: '0.0.0.0' });
    assert.deepEqual(
      undeclaredDifferences(
        'gateway',
        world,
        gatewayDocument(gatewayFacts),
        WORLD_CONFIG_DIFFERENCES.gateway,
      ),
      ['http.host: world "0.0.0.0", deployed "::"', 'https.host: world "0.0.0.0", deployed "::"'],
    );
    assert.ok(declares('gateways[*].ssh.user', 'gateways[3].ssh.user'));
    assert.ok(declares('status', 'status.port'));
    assert.ok(!declares('status', 'statusPort'));
  });
});

describe('nonstop render gateway|guard|broker|core|knock', () => {
  const refuses = (artefact: string, doc: unknown, message: RegExp) =>
    assert.throws(() => renderArtefact(artefact, 'in.json', doc), message);

  test('prints the builder’s document as JSON, two-space indented, with a final newline', () => {
    const text = renderArtefact('gateway', 'in.json', gatewayFacts);
    assert.equal(text, `${JSON.stringify(gatewayDocument(gatewayFacts), null, 2)}\n`);
    assert.deepEqual(JSON.parse(renderArtefact('core', 'in.json', corePostgres)), coreDocument(corePostgres));
    assert.deepEqual(
      JSON.parse(renderArtefact('broker', 'in.json', brokerFacts)),
      brokerDocument(brokerFacts),
    );
    assert.deepEqual(
      JSON.parse(renderArtefact('guard', 'in.json', gatewayGuard)),
      guardDocument(gatewayGuard),
    );
  });

  test('gateway: static mounts pass through, the daemon filling their defaults', () => {
    const mounts = [
      { path: '/assets/', dir: '/srv/nonstop/static/v2/assets', maxAgeSeconds: 60 },
      { path: '/site/', dir: '/srv/nonstop/static/v2/site', index: true },
    ];
    const doc = JSON.parse(renderArtefact('gateway', 'in.json', { ...gatewayFacts, static: mounts })) as {
      static: unknown;
    };
    assert.deepEqual(doc.static, mounts);
    assert.equal('static' in gatewayDocument(gatewayFacts), false, 'no mounts: the field is left out');
  });

  test('gateway: compression settings pass through; a bad one names its field', () => {
    const compression = { minBytes: 2048, dynamic: { brotliQuality: 5 }, static: { cacheBytes: 1048576 } };
    const doc = JSON.parse(renderArtefact('gateway', 'in.json', { ...gatewayFacts, compression })) as {
      compression: unknown;
    };
    assert.deepEqual(doc.compression, compression);
    assert.equal('compression' in gatewayDocument(gatewayFacts), false, 'none given: the field is left out');
    refuses(
      'gateway',
      { ...gatewayFacts, compression: { dynamic: { brotliQuality: 12 } } },
      /field "compression\.dynamic\.brotliQuality"/,
    );
  });

  test('bad input names the field and what was expected', () => {
    refuses(
      'gateway',
      { ...gatewayFacts, removeTableOnExit: true },
      /in\.json: field "removeTableOnExit" is not a known field/,
    );
    refuses('gateway', { ...gatewayFacts, configDir: 'etc/nonstop' }, /in\.json: field "configDir"/);
    refuses('gateway', { id: 'gw1', configDir: '/etc/nonstop' }, /field "tunnels" is required/);
    refuses('gateway', { ...gatewayFacts, httpMode: 'open' }, /field "httpMode"/);
    refuses(
      'gateway',
      { ...gatewayFacts, static: [{ path: '/assets', dir: '/srv/nonstop/static/v1/assets' }] },
      /in\.json: field "static\[0\]\.path"/,
    );
    refuses(
      'gateway',
      { ...gatewayFacts, static: [{ path: '/assets/', dir: 'static' }] },
      /in\.json: field "static\[0\]\.dir"/,
    );
    refuses(
      'gateway',
      { ...gatewayFacts, tunnels: [{ broker: 'b1', port: '6380' }] },
      /field "tunnels\[0\]\.port"/,
    );
    refuses('guard', { ...gatewayGuard, role: 'core' }, /field "role"/);
    refuses('guard', { role: 'broker', id: 'broker1' }, /must name an admin knock/);
    refuses('broker', { ...brokerFacts, gateways: [] }, /field "gateways"/);
    refuses(
      'broker',
      { ...brokerFacts, gateways: [{ ...brokerFacts.gateways[0], hostKeyFingerprint: 'MD5:00' }] },
      /field "gateways\[0\]\.hostKeyFingerprint"/,
    );
    refuses('broker', { ...brokerFacts, tunnels: { maxChannels: 0 } }, /field "tunnels\.maxChannels"/);
    refuses('core', { ...corePostgres, database: {} }, /field "database"/);
    refuses(
      'core',
      { ...corePostgres, database: { postgres: { user: 'x; drop', database: 'nonstop', port: 5432 } } },
      /field "database\.postgres\.user"/,
    );
    refuses('core', { ...corePostgres, privateAddress: '0.0.0.0' }, /own private IP address/);
    refuses(
      'knock',
      { client: 'broker1', gateways: [{ id: 'gw1', address: 'gw1', secret: 'x' }] },
      /field "gateways\[0\]\.secret"/,
    );
  });
});

describe('nonstop render --out', () => {
  test('writes the document atomically; configs with knock secrets for their owner only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nonstop-render-'));
    try {
      const input = join(dir, 'in.json');
      for (const [artefact, doc, mode] of [
        ['guard', gatewayGuard, 0o600],
        ['gateway', gatewayFacts, 0o644],
      ] as const) {
        writeFileSync(input, JSON.stringify(doc));
        const out = join(dir, `${artefact}.json`);
        assert.equal(await renderCommand.run([artefact, '--input', input, '--out', out]), 0);
        assert.equal(statSync(out).mode & 0o777, mode, artefact);
        assert.equal(readFileSync(out, 'utf8'), renderArtefact(artefact, input, doc));
      }
      assert.deepEqual(readdirSync(dir).sort(), ['gateway.json', 'guard.json', 'in.json']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
