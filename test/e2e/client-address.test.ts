// Real client addresses behind a load balancer, in the world: every gateway's 443 takes PROXY
// protocol from inet (its trusted proxy) only. Two clients that inet names are rate-limited in
// buckets of their own; a connection from inet without a header, and one from a host that is not
// trusted (a broker, on the same public segment) with a header, are closed unanswered; port 80,
// not in PROXY mode, still serves.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SITE_NAME, ThreeTier } from '../../world/three-tier.js';
import type { Host } from '../../world/world.js';
import { worldSkipReason } from '../../world/world.js';

const skip = worldSkipReason();
const CLIENT = 'dist/test/world/proxy-client.js';

describe('client addresses through PROXY protocol', { skip }, () => {
  let tt: ThreeTier;
  before(async () => {
    // Two requests a client, then (nearly) none: each bucket shows in the third answer.
    tt = await ThreeTier.start({
      gatewayProxyProtocolFromInet: true,
      gatewayLimits: { ratePerSecond: 0.01, rateBurst: 2 },
    });
    await tt.waitUntilServing(90_000);
  });
  after(() => tt?.close());

  const send = async (from: Host, clientIp: string | null, count: number): Promise<number[]> => {
    const r = await from.runNode(
      CLIENT,
      [
        JSON.stringify({
          address: tt.gateway('gw1').host.ip4,
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
    return (JSON.parse(line) as { statuses: number[] }).statuses;
  };

  test(
    'each client the trusted proxy names has its own rate-limit bucket',
    { timeout: 120_000 },
    async () => {
      assert.deepEqual(await send(tt.inet, '203.0.113.1', 3), [200, 200, 429]);
      assert.deepEqual(await send(tt.inet, '203.0.113.2', 2), [200, 200], 'another client, its own bucket');
      assert.deepEqual(await send(tt.inet, '2001:db8::7', 2), [200, 200]);
    },
  );

  test(
    'no header from the proxy, or a header from an untrusted host: closed unanswered',
    { timeout: 120_000 },
    async () => {
      assert.deepEqual(await send(tt.inet, null, 1), [0]);
      assert.deepEqual(await send(tt.broker('b1').host, '203.0.113.9', 1), [0]);
      // Port 80 is not in PROXY mode: inet's own requests are served there.
      assert.equal((await tt.request('gw1', { path: '/healthz' })).status, 200);
    },
  );
});
