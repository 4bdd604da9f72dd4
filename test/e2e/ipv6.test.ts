// IPv6 end to end in the three-tier world: clients reach the gateways over IPv6 (HTTP and HTTPS)
// through the whole path, an admin knocks over IPv6, the last broker knocks and tunnels into
// every gateway over IPv6 and carries requests, and a scan over IPv6 sees what one over IPv4
// sees: 80 and 443 on gateways, nothing on brokers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ThreeTier, type BrokerNode, type GatewayNode } from '../../world/three-tier.js';
import { worldSkipReason } from '../../world/world.js';
import { nmap, openPorts, portStates, scanLine } from '../world/nmap.js';
import { CLI, eventually, probe as probeFrom } from './gateway.js';

const skip = worldSkipReason();
/** A second IPv6 source on inet that never knocks. */
const BYSTANDER6 = '2001:2:0:1::ff00';

describe('IPv6 end to end', { skip }, () => {
  let tt: ThreeTier;
  let v6Broker: BrokerNode;

  before(async () => {
    tt = await ThreeTier.start();
    v6Broker = tt.brokers.at(-1)!;
    // Deprecated (preferred_lft 0): used only when bound to, never picked as inet's source.
    await tt.inet.check('ip', [
      '-6',
      'addr',
      'add',
      `${BYSTANDER6}/64`,
      'dev',
      'pub0',
      'nodad',
      'preferred_lft',
      '0',
    ]);
  });
  after(() => tt?.close());

  const probe = (from: string, to: string, port: number, timeoutMs = 700) =>
    probeFrom(tt.inet, to, port, { bind: from, timeoutMs });
  /** The gateway's log line for one answered request. */
  const answered = (g: GatewayNode, requestId: string | undefined) =>
    g.gateway.jsonLines().find((l) => l.requestId === requestId && typeof l.status === 'number');

  test('HTTP and HTTPS over IPv6 from inet: 201 and 200 through the whole path, the client seen by its v6 address', async () => {
    for (const g of tt.gateways) {
      assert.match(g.ip6, /^2001:2:0:1::/);
      const title = `v6 note via ${g.id}`;
      const created = await tt.request(g.id, {
        method: 'POST',
        path: '/notes',
        body: JSON.stringify({ title }),
        family: 6,
      });
      assert.equal(created.status, 201, `${g.id} http://[${g.ip6}]: ${created.error ?? created.body}`);
      const id = (JSON.parse(created.body) as { id: string }).id;
      const read = await tt.request(g.id, { path: `/notes/${id}`, https: true, family: 6 });
      assert.equal(read.status, 200, `${g.id} https://[${g.ip6}]: ${read.error ?? read.body}`);
      assert.equal((JSON.parse(read.body) as { title: string }).title, title);
      // The gateway saw the client's own IPv6 address (rate limits and the envelope use it)...
      assert.equal(answered(g, created.headers['x-request-id'])?.clientIp, tt.inet.ip6);
      assert.equal(answered(g, read.headers['x-request-id'])?.clientIp, tt.inet.ip6);
      // ...and, on the same dual-stack listener, an IPv4 client as plain IPv4, not ::ffff:….
      const v4 = await tt.request(g.id, { path: '/notes?limit=1', https: true });
      assert.equal(v4.status, 200, v4.error ?? v4.body);
      assert.equal(answered(g, v4.headers['x-request-id'])?.clientIp, tt.inet.ip4);
    }
  });

  test("HTTPS over IPv6 is verified against the gateway's certificate: its v6 address is an IP SAN", async () => {
    const g = tt.gateways[0]!;
    const r = await tt.inet.exec('openssl', [
      's_client',
      '-connect',
      `[${g.ip6}]:443`,
      '-verify_ip',
      g.ip6,
      '-verify_return_error',
      '-CAfile',
      tt.publicCaFile,
      '-brief',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Verification: OK/, r.stderr);
    // Another v6 address is not in the certificate: verification must fail.
    const other = await tt.inet.exec('openssl', [
      's_client',
      '-connect',
      `[${g.ip6}]:443`,
      '-verify_ip',
      BYSTANDER6,
      '-verify_return_error',
      '-CAfile',
      tt.publicCaFile,
      '-brief',
    ]);
    assert.notEqual(other.code, 0, 'a v6 address the certificate does not name must not verify');
  });

  test('from inet, a full TCP scan over IPv6: gateways show only 80 and 443, brokers nothing (before any admin knock)', async (t) => {
    const targets = [
      ...tt.gateways.map((g) => ({ role: 'gateway', name: g.id, addr: g.ip6 })),
      ...tt.brokers.map((b) => ({ role: 'broker', name: b.id, addr: b.host.ip6 })),
    ];
    const scan = await nmap(
      tt.inet,
      targets.map((x) => x.addr),
      '1-65535',
      { minRate: 20_000 },
    );
    for (const { role, name, addr } of targets) {
      t.diagnostic(scanLine(scan, role, name, addr));
      if (role === 'gateway') {
        assert.deepEqual(openPorts(scan, addr), [80, 443], `${name} ${addr}`);
        assert.deepEqual(portStates(scan, addr), { open: 2, filtered: 65533 }, `${name} ${addr}`);
      } else {
        assert.deepEqual(openPorts(scan, addr), [], `${name} ${addr}`);
      }
    }
    // The core has no public address; its private v6 address is not reachable from inet.
    const core6 = tt.core.host.addresses.private.v6[0]!;
    assert.notEqual(await probe(tt.inet.ip6, core6, tt.core.port), 'open');
  });

  test('a rotating knock over IPv6 opens SSH over v6 for that source only', async () => {
    for (const g of tt.gateways) {
      assert.equal(await probe(tt.inet.ip6, g.ip6, g.sshPort), 'filtered', `${g.id}: filtered before`);
      const r = await tt.inet.runNode(CLI, [
        'knock',
        g.ip6,
        '--bind',
        tt.inet.ip6,
        '--profiles',
        tt.adminKnockProfiles,
        '--profile',
        `admin-${g.id}`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      await eventually(async () => (await probe(tt.inet.ip6, g.ip6, g.sshPort, 300)) === 'open', 2000, 50);
      const banner = await tt.inet.exec('ssh-keyscan', ['-T', '3', '-t', 'ed25519', g.ip6]);
      assert.match(banner.stdout, /ssh-ed25519/, `${g.id}: sshd answers over v6: ${banner.stderr}`);
      assert.equal(await probe(BYSTANDER6, g.ip6, g.sshPort), 'filtered', `${g.id}: another v6 source`);
      assert.equal(await probe(tt.inet.ip4, g.ip, g.sshPort), 'filtered', `${g.id}: inet's v4 address`);
      const opened = g.guard.jsonLines().find((l) => l.outcome === 'opened' && l.clientIp === tt.inet.ip6);
      assert.equal(opened?.client, 'admin', `${g.id}: the guard logged the v6 open`);
    }
  });

  test('the last broker knocks and tunnels into every gateway over IPv6 and carries requests', async () => {
    assert.equal(v6Broker.tunnelFamily, 6);
    for (const b of tt.brokers.slice(0, -1)) assert.equal(b.tunnelFamily, 4, `${b.id} stays on IPv4`);
    const status = async () =>
      JSON.parse(
        await v6Broker.host.check('curl', ['-sf', `http://127.0.0.1:${v6Broker.statusPort}/status`]),
      ) as { tunnels: { gatewayId: string; gateway: string; state: string; forwarded: number }[] };
    for (const g of tt.gateways) {
      const tunnel = (await status()).tunnels.find((x) => x.gatewayId === g.id);
      assert.equal(tunnel?.gateway, `${g.ip6}:${g.sshPort}`);
      assert.equal(tunnel?.state, 'up');
      // The guard opened SSH for the broker's v6 address, and sshd holds its session over v6.
      const opened = g.guard.jsonLines().find((l) => l.outcome === 'opened' && l.client === v6Broker.id);
      assert.equal(opened?.clientIp, v6Broker.host.ip6, `${g.id}: ${v6Broker.id}'s knock came over v6`);
      const sessions = await g.host.check('ss', ['-tnH', 'state', 'established', '( sport = :22 )']);
      assert.ok(sessions.includes(`[${v6Broker.host.ip6}]:`), `${g.id}: sessions over v6:\n${sessions}`);
    }
    // With every other broker gone, each gateway's queue moves to the v6 tunnel: that one serves.
    for (const b of tt.brokers.slice(0, -1)) await tt.killBroker(b.id);
    for (const g of tt.gateways) {
      await eventually(
        async () => (await tt.request(g.id, { path: '/notes?limit=1', family: 6 })).status === 200,
        20_000,
        200,
      );
      const r = await tt.request(g.id, {
        method: 'POST',
        path: '/notes',
        body: JSON.stringify({ title: `through ${v6Broker.id}'s v6 tunnel` }),
        https: true,
        family: 6,
      });
      assert.equal(r.status, 201, r.error ?? r.body);
      const requestId = r.headers['x-request-id'];
      const executed = v6Broker.process
        .jsonLines()
        .find((l) => l.requestId === requestId && l.msg === 'executed');
      assert.ok(executed, `${v6Broker.id} executed ${requestId} of ${g.id}`);
      const tunnel = (await status()).tunnels.find((x) => x.gatewayId === g.id);
      assert.ok((tunnel?.forwarded ?? 0) > 0, `${g.id}: the v6 tunnel forwarded connections`);
    }
  });

  test('after a partition the v6 broker keeps its address, knocks again and serves over IPv6', async () => {
    const opens = (g: GatewayNode) =>
      g.guard.jsonLines().filter((l) => l.outcome === 'opened' && l.clientIp === v6Broker.host.ip6).length;
    const before = tt.gateways.map(opens);
    await tt.setLink(v6Broker.host, 'public', false);
    // Longer than the broker's keepalives allow: its tunnels drop and must be rebuilt.
    await new Promise((resolve) => setTimeout(resolve, 6000));
    await tt.setLink(v6Broker.host, 'public', true);
    const addresses = await v6Broker.host.check('ip', ['-6', '-o', 'addr', 'show', 'dev', 'pub0']);
    assert.ok(
      addresses.includes(`${v6Broker.host.ip6}/64`),
      `${v6Broker.id} lost its v6 address:\n${addresses}`,
    );
    for (const g of tt.gateways) {
      await eventually(
        async () => (await tt.request(g.id, { path: '/notes?limit=1', family: 6 })).status === 200,
        60_000,
        500,
      );
    }
    assert.ok(
      tt.gateways.every((g, i) => opens(g) > before[i]!),
      'it knocked every gateway again over IPv6',
    );
  });
});
