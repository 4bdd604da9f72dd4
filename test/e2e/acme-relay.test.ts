// ACME challenge answers across the namespace world: what gw1 publishes through its tunnels
// reaches gw2 (which serves the same name) through either broker, and one broker is enough; an
// answer for a name gw1 does not serve reaches no one.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ChallengeAnswer } from '../../gateway/acme/challenges.js';
import { SITE_NAME, ThreeTier } from '../../world/three-tier.js';
import { worldSkipReason } from '../../world/world.js';

const skip = worldSkipReason();
const PEER = 'dist/test/helpers/acme-relay-peer.js';

let n = 0;
function answer(type: ChallengeAnswer['type'], identifier: string): ChallengeAnswer {
  const token = `e2e${++n}_${Date.now().toString(36)}`;
  return {
    type,
    identifier,
    token,
    keyAuthorization: `${token}.${'w'.repeat(43)}`,
    expiresAt: Date.now() + 120_000,
  };
}

describe('ACME challenge answers relayed in the world', { skip }, () => {
  test('gw1 publishes, gw2 answers through any broker up; a name gw1 does not serve goes nowhere', async (t) => {
    const tt = await ThreeTier.start({ gateways: 2, brokers: 2 });
    t.after(() => tt.close());
    const [gw1, gw2] = [tt.gateway('gw1'), tt.gateway('gw2')];
    const run = async (g: typeof gw1, args: string[]) => {
      const r = await g.host.runNode(PEER, args, { timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    };
    const publish = (a: ChallengeAnswer, confirmMs = 15_000) =>
      run(gw1, ['publish', gw1.configFile, JSON.stringify(a), String(confirmMs)]);
    const lookup = (a: ChallengeAnswer, ms = 10_000) =>
      run(gw2, ['lookup', gw2.configFile, a.type, a.type === 'http-01' ? a.token : a.identifier, String(ms)]);

    const http = answer('http-01', SITE_NAME);
    assert.deepEqual(await publish(http), { relayed: true });
    assert.deepEqual(await lookup(http), { keyAuthorization: http.keyAuthorization });

    const elsewhere = answer('http-01', 'elsewhere.example.org');
    assert.deepEqual(await publish(elsewhere, 2000), { relayed: false });
    assert.deepEqual(await lookup(elsewhere, 2000), { keyAuthorization: null });

    await tt.killBroker('b1');
    const tls = answer('tls-alpn-01', SITE_NAME);
    assert.deepEqual(await publish(tls), { relayed: true }, 'relayed by b2 alone');
    assert.deepEqual(await lookup(tls), { keyAuthorization: tls.keyAuthorization });
  });
});
