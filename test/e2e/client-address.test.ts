// Real client addresses behind a load balancer, in the world: every gateway's 443 takes PROXY
// protocol (v1 and v2) from inet, its trusted proxy, only. Each client inet names, IPv4 or IPv6,
// is rate-limited in a bucket of its own and logged by its own address; a connection from inet
// without a header, one with a malformed header, and one from a host that is not trusted (a
// broker, on the same public segment) with a header are closed unanswered; port 80, not in PROXY
// mode, still serves.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SITE_NAME, ThreeTier } from '../../world/three-tier.js';
import type { Host } from '../../world/world.js';
import { worldSkipReason } from '../../world/world.js';

const skip = worldSkipReason();
const CLIENT = 'dist/test/world/proxy-client.js';
/** Requests a client may send before its bucket is empty (it refills at 0.01/s: never, here). */
const BURST = 20;

interface Sent {
  readonly statuses: number[];
  readonly errors: string[];
}

describe('client addresses through PROXY protocol', { skip }, () => {
  let tt: ThreeTier;
  before(async () => {
    // inet's own requests (the world's readiness probes on port 80) have a bucket of their own.
    tt = await ThreeTier.start({
      gatewayProxyProtocolFromInet: true,
      gatewayLimits: { ratePerSecond: 0.01, rateBurst: BURST },
    });
    await tt.waitUntilServing(90_000);
  });
  after(() => tt?.close());

  const send = async (
    from: Host,
    clientIp: string | null,
    count: number,
    version: 1 | 2 = 1,
  ): Promise<Sent> => {
    const g = tt.gateway('gw1');
    const r = await from.runNode(
      CLIENT,
      [
        JSON.stringify({
          address: g.host.ip4,
          address6: g.ip6,
          version,
          servername: SITE_NAME,
          ca: tt.publicCaFile,
          clientIp,
          path: '/notes?limit=1',
          count,
        }),
      ],
      { timeoutMs: 60_000 },
    );
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    assert.ok(line, `code ${r.code}: ${r.stdout} ${r.stderr}`);
    return JSON.parse(line) as Sent;
  };
  const gatewayLog = () => {
    const p = tt.gateway('gw1').gateway;
    return [...p.lines, ...p.stderrLines];
  };
  const full = [...Array<number>(BURST).fill(200), 429];

  test(
    'each client the trusted proxy names, v1 or v2, IPv4 or IPv6, has its own bucket and is logged by its address',
    { timeout: 180_000 },
    async () => {
      const answered = () =>
        gatewayLog()
          .filter((l) => l.includes('"msg":"answered"') && l.includes('notes.list'))
          .map((l) => (JSON.parse(l) as { clientIp?: string }).clientIp);
      const asProxyBefore = answered().filter((ip) => ip === tt.inet.ip4).length;
      const first = await send(tt.inet, '203.0.113.1', BURST + 1);
      assert.deepEqual(first.statuses, full, first.errors.join('; '));
      const second = await send(tt.inet, '203.0.113.2', BURST + 1, 2);
      assert.deepEqual(
        second.statuses,
        full,
        `another client (v2), its own bucket: ${second.errors.join('; ')}`,
      );
      const six = await send(tt.inet, '2001:db8::7', 2);
      assert.deepEqual(six.statuses, [200, 200], six.errors.join('; '));
      const sixV2 = await send(tt.inet, '2001:db8:1::9', 2, 2);
      assert.deepEqual(sixV2.statuses, [200, 200], sixV2.errors.join('; '));
      // The gateway's request log names each client, never the proxy.
      // (inet's own, on port 80, are: the world's readiness probes, before these.)
      const logged = answered();
      for (const ip of ['203.0.113.1', '203.0.113.2', '2001:db8::7', '2001:db8:1::9'])
        assert.ok(logged.includes(ip), `a request of ${ip} is logged by its address`);
      const asProxy = logged.filter((ip) => ip === tt.inet.ip4).length;
      assert.equal(asProxy, asProxyBefore, 'no request on 443 is logged as the proxy');
    },
  );

  test(
    'no header from the proxy, a malformed one, or a header from an untrusted host: closed unanswered',
    { timeout: 120_000 },
    async () => {
      assert.deepEqual((await send(tt.inet, null, 1)).statuses, [0]);
      assert.deepEqual((await send(tt.inet, '203.0.113.300', 1)).statuses, [0], 'not an address');
      assert.deepEqual((await send(tt.broker('b1').host, '203.0.113.9', 1)).statuses, [0]);
      const log = gatewayLog().join('\n');
      assert.match(log, /PROXY listener: connection without a valid header closed/);
      assert.match(log, /PROXY listener: connection from an untrusted address closed/);
      // Port 80 is not in PROXY mode: inet's own requests are served there.
      assert.equal((await tt.request('gw1', { path: '/healthz' })).status, 200);
    },
  );
});
