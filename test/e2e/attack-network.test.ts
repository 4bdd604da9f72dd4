// Network attacks on the whole system in namespaces (world/three-tier.ts): what `inet` sees
// of every host in a full TCP port scan, SSH without a knock, and what a compromised gateway
// (a shell in its namespace, with its Redis credentials) can reach.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { gatewayUser } from '../../broker/redis-acl.js';
import { queueName, replyKey } from '../../lib/envelope.js';
import { GUESTBOOK_PORT, WORLD_METRICS_PORT } from '../../world/host-configs.js';
import { ThreeTier, type GatewayNode } from '../../world/three-tier.js';
import { worldSkipReason, type Host } from '../../world/world.js';
import { nmap, openPorts, portStates as states, scanLine } from '../world/nmap.js';
import { probe as probeFrom } from './gateway.js';

const skip = worldSkipReason();
const PREFIX = 'nonstop';

const probe = (from: Host, addr: string, port: number, timeoutMs = 1500) =>
  probeFrom(from, addr, port, { timeoutMs });

describe('network attacks on the three-tier world', { skip }, () => {
  let tt: ThreeTier;
  let gw1: GatewayNode;
  let gw2: GatewayNode;

  before(async () => {
    tt = await ThreeTier.start();
    gw1 = tt.gateway('gw1');
    gw2 = tt.gateway('gw2');
  });
  after(() => tt?.close());

  test('from inet, full TCP scans over IPv4 and IPv6: gateways show only 80 and 443, brokers and core nothing', async (t) => {
    const gateways = tt.gateways.flatMap((g) => [g.ip, g.ip6].map((addr) => ({ name: g.id, addr })));
    const brokers = tt.brokers.flatMap((b) => [b.host.ip4, b.host.ip6].map((addr) => ({ name: b.id, addr })));
    const started = Date.now();
    const scan = await nmap(
      tt.inet,
      [...gateways, ...brokers].map((x) => x.addr),
      '1-65535',
    );
    t.diagnostic(
      `nmap -sS -p 1-65535 of ${gateways.length + brokers.length} addresses: ${Date.now() - started} ms`,
    );
    for (const { name, addr } of gateways) {
      t.diagnostic(scanLine(scan, 'gateway', name, addr));
      assert.deepEqual(openPorts(scan, addr), [80, 443], `gateway ${name} ${addr}`);
      // Everything else, the SSH port included, is filtered: no RST, no ICMP.
      assert.deepEqual(states(scan, addr), { open: 2, filtered: 65533 }, `gateway ${name} ${addr}`);
    }
    for (const { name, addr } of brokers) {
      t.diagnostic(`${scanLine(scan, 'broker', name, addr)} ${JSON.stringify(states(scan, addr))}`);
      assert.deepEqual(openPorts(scan, addr), [], `broker ${name} ${addr} has no open port`);
    }
    // The core is on the private segment only: inet has no route to it at all, in either family.
    for (const addr of [tt.core.ip, tt.core.host.addresses.private.v6[0]!]) {
      const core = await Promise.all(
        [tt.core.port, 22, 5432, 6379, 80, 443].map((p) => probe(tt.inet, addr, p)),
      );
      t.diagnostic(`core ${addr} from inet: ${core.join(', ')}`);
      assert.deepEqual(
        core.filter((s) => s === 'open'),
        [],
        `core ${addr} from inet: ${core.join(', ')}`,
      );
    }
  });

  test('from inet, SSH to a gateway without a knock times out (filtered), over IPv4 and IPv6', async () => {
    for (const g of [gw1, gw2]) {
      assert.equal(
        await probe(tt.inet, g.ip6, g.sshPort, 3000),
        'filtered',
        `${g.id} [${g.ip6}]:${g.sshPort}`,
      );
      assert.equal(await probe(tt.inet, g.ip, g.sshPort, 3000), 'filtered', `${g.id}:${g.sshPort}`);
      const ssh = await tt.inet.exec(
        'ssh',
        [
          '-o',
          'BatchMode=yes',
          '-o',
          'ConnectTimeout=3',
          '-o',
          'StrictHostKeyChecking=no',
          '-o',
          'UserKnownHostsFile=/dev/null',
          '-p',
          String(g.sshPort),
          `nonstop-tunnel@${g.ip}`,
          'true',
        ],
        { timeoutMs: 20_000 },
      );
      assert.equal(ssh.code, 255, `${g.id}: ssh exited ${ssh.code}`);
      assert.match(ssh.stderr, /timed out/i, `${g.id}: ${ssh.stderr}`);
    }
  });

  test('a compromised gateway reaches no broker port and not the core', async (t) => {
    const brokers = tt.brokers.flatMap((b) => [b.host.ip4, b.host.ip6]);
    const started = Date.now();
    const scan = await nmap(gw1.host, brokers, '1-65535');
    t.diagnostic(`nmap from gw1 of the brokers: ${Date.now() - started} ms`);
    for (const ip of brokers) {
      assert.deepEqual(openPorts(scan, ip), [], `broker ${ip} from gw1`);
      const seen = states(scan, ip);
      t.diagnostic(`broker ${ip} from gw1: ${JSON.stringify(seen)}`);
      assert.equal(
        (seen.closed ?? 0) + (seen.filtered ?? 0),
        65535,
        `broker ${ip}: every port closed or filtered ${JSON.stringify(seen)}`,
      );
    }
    // Nor at the brokers' private addresses (not on the gateway's network).
    const SERVICE_PORTS = [22, 80, 443, 6379, tt.core.port, 9100, 16001, 16002];
    const targets = tt.brokers.flatMap((b) =>
      [...b.host.addresses.private.v4, ...b.host.addresses.private.v6].map((addr) => ({ id: b.id, addr })),
    );
    await Promise.all(
      targets.map(async ({ id, addr }) => {
        const seen = await Promise.all(SERVICE_PORTS.map((p) => probe(gw1.host, addr, p)));
        t.diagnostic(`${id} ${addr} from gw1: ${seen.join(', ')}`);
        assert.deepEqual(
          seen.filter((x) => x === 'open'),
          [],
          `${id} ${addr} from gw1: ${seen.join(', ')}`,
        );
      }),
    );
    // The core is not on the gateway's network: no route in either family, so nothing can even be tried.
    for (const addr of [tt.core.ip, tt.core.host.addresses.private.v6[0]!]) {
      const core = await Promise.all(
        [tt.core.port, 22, 5432, 6379, 80, 443, 9100].map((p) => probe(gw1.host, addr, p)),
      );
      t.diagnostic(`core ${addr} from gw1: ${core.join(', ')}`);
      assert.deepEqual(
        core.filter((s) => s === 'open' || s === 'closed'),
        [],
        `core ${addr} from gw1: ${core.join(', ')}`,
      );
      const route = await gw1.host.exec('ip', ['route', 'get', addr]);
      assert.notEqual(route.code, 0, `gw1 has a route to the core's ${addr}: ${route.stdout}`);
    }
  });

  test('through the tunnel a compromised gateway is its own Redis user and nothing more', async () => {
    const password = readFileSync(gw1.redisPasswordFile, 'utf8').trim();
    const otherQueue = `${PREFIX}:${queueName(gw2.id)}`;
    for (const b of tt.brokers) {
      const port = gw1.remotePorts[b.id]!;
      const cli = async (args: readonly string[], auth?: { user: string; pass: string }) => {
        const authArgs =
          auth === undefined ? [] : ['--user', auth.user, '--pass', auth.pass, '--no-auth-warning'];
        const r = await gw1.host.exec(
          'redis-cli',
          ['-h', '127.0.0.1', '-p', String(port), ...authArgs, ...args],
          {
            timeoutMs: 10_000,
          },
        );
        return `${r.stdout}${r.stderr}`.trim();
      };
      const own = { user: gw1.redisUser, pass: password };
      assert.equal(gw1.redisUser, gatewayUser(gw1.id));
      // Its own credentials work: the tunnel does reach this broker's Redis.
      assert.equal(await cli(['HSET', `${PREFIX}:${queueName(gw1.id)}:attack-probe`, 'a', '1'], own), '1');
      const refused: [string, string[], { user: string; pass: string } | undefined, RegExp][] = [
        ['no credentials', ['GET', `${otherQueue}:id`], undefined, /NOAUTH/],
        ['no credentials, KEYS', ['KEYS', '*'], undefined, /NOAUTH/],
        [
          "the other gateway's user, guessed password",
          ['PING'],
          { user: gatewayUser(gw2.id), pass: 'guess' },
          /WRONGPASS/,
        ],
        ['the admin user, guessed password', ['PING'], { user: 'nonstop-admin', pass: 'guess' }, /WRONGPASS/],
        ['the default user', ['PING'], { user: 'default', pass: '' }, /WRONGPASS|NOAUTH/],
        ['ACL WHOAMI', ['ACL', 'WHOAMI'], own, /NOPERM/],
        ['ACL LIST', ['ACL', 'LIST'], own, /NOPERM/],
        ['KEYS', ['KEYS', '*'], own, /NOPERM/],
        ['SCAN', ['SCAN', '0'], own, /NOPERM/],
        ['INFO', ['INFO'], own, /NOPERM/],
        ['CONFIG GET', ['CONFIG', 'GET', '*'], own, /NOPERM/],
        ['FLUSHALL', ['FLUSHALL'], own, /NOPERM/],
        ['MONITOR', ['MONITOR'], own, /NOPERM/],
        ["read the other gateway's wait list", ['LRANGE', `${otherQueue}:wait`, '0', '-1'], own, /NOPERM/],
        ["read the other gateway's meta", ['HGETALL', `${otherQueue}:meta`], own, /NOPERM/],
        ["write the other gateway's wait list", ['LPUSH', `${otherQueue}:wait`, 'x'], own, /NOPERM/],
        ["delete the other gateway's meta", ['DEL', `${otherQueue}:meta`], own, /NOPERM/],
        [
          "read the other gateway's replies",
          ['XREAD', 'STREAMS', replyKey(PREFIX, gw2.id, 'x'), '0-0'],
          own,
          /NOPERM/,
        ],
        [
          "trim the other gateway's replies",
          ['XTRIM', replyKey(PREFIX, gw2.id, 'x'), 'MINID', '9-0'],
          own,
          /NOPERM/,
        ],
        ['a key outside the prefix', ['SET', 'elsewhere', 'x'], own, /NOPERM/],
      ];
      const allowed: string[] = [];
      for (const [what, args, auth, expected] of refused) {
        const out = await cli(args, auth);
        if (!expected.test(out)) allowed.push(`${b.id}: ${what}: ${out.slice(0, 200)}`);
      }
      assert.deepEqual(allowed, [], 'every attempt through the tunnel is refused');
      assert.equal(await cli(['DEL', `${PREFIX}:${queueName(gw1.id)}:attack-probe`], own), '1');
    }
    // Still serving after all that.
    for (const g of [gw1, gw2])
      assert.equal((await tt.request(g.id, { path: '/notes?limit=1' })).status, 200);
  });

  test("a gateway's metrics answer on its own loopback only: not from inet, not on its public address", async () => {
    const port = WORLD_METRICS_PORT;
    assert.equal(
      await tt.inet.check('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${gw1.httpUrl}/healthz`]),
      '200',
    );
    const text = await gw1.host.check('curl', ['-s', '--max-time', '5', `http://127.0.0.1:${port}/metrics`]);
    assert.match(text, /^nonstop_gateway_requests_total\{route="_health",status="200"\} [1-9]/m);
    assert.match(text, /^nonstop_gateway_certificate_expiry_seconds \d{10}$/m);
    const listening = (await gw1.host.check('ss', ['-ltnH', `sport = :${port}`])).trim().split(/\s+/)[3];
    assert.equal(listening, `127.0.0.1:${port}`);
    for (const addr of [gw1.ip, gw1.ip6]) {
      assert.equal(await probe(tt.inet, addr, port), 'filtered', `${addr}:${port} from inet`);
      // Not even from the gateway itself on its public address: nothing listens there.
      assert.equal(await probe(gw1.host, addr, port), 'closed', `${addr}:${port} from gw1`);
    }
  });

  test('from inside: a broker listens on nothing but loopback (TCP and UDP), the core only on its private address (and its upstream on loopback)', async () => {
    const locals = async (host: Host, flags: string) =>
      (await host.check('ss', [flags]))
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => l.trim().split(/\s+/)[3]!);
    for (const b of tt.brokers) {
      const tcp = await locals(b.host, '-ltnH');
      for (const r of Object.values(b.redis))
        assert.ok(
          tcp.includes(`127.0.0.1:${r.port}`),
          `${b.id}: ${r.gatewayId}'s Redis listens (${tcp.join(' ')})`,
        );
      for (const local of [...tcp, ...(await locals(b.host, '-lunH'))])
        assert.match(local, /^(127\.\d+\.\d+\.\d+|\[::1\]):\d+$/, `${b.id}: ${local} is not loopback`);
    }
    // The core on its private address; the sample site (the core's upstream) and the core's
    // metrics listener (as its config names it) on loopback only.
    const coreConfig = JSON.parse(readFileSync(tt.core.configFile, 'utf8')) as {
      metrics?: { host: string; port: number };
    };
    assert.equal(coreConfig.metrics?.host, '127.0.0.1');
    assert.deepEqual(
      (await locals(tt.core.host, '-ltnH')).sort(),
      [
        `${tt.core.ip}:${tt.core.port}`,
        `127.0.0.1:${GUESTBOOK_PORT}`,
        `127.0.0.1:${coreConfig.metrics.port}`,
      ].sort(),
    );
    assert.deepEqual(await locals(tt.core.host, '-lunH'), []);
  });
});
