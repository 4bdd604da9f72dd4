// The whole world with brokers that open the gateways by single-packet authorization
// (`brokerKnock: "spa"`, the Ansible inventory's broker_spa_keys): every broker's tunnel comes up
// after one SPA packet per connection, over IPv4 and (the last broker) IPv6; requests are served;
// the guards list the brokers as SPA clients only; the admin's own SPA keys open SSH too.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { ThreeTier } from '../../world/three-tier.js';
import { worldSkipReason } from '../../world/world.js';
import { AGENT, CLI, eventually } from './gateway.js';

const skip = worldSkipReason();

describe('brokers that knock by SPA', { skip }, () => {
  let tt: ThreeTier;
  before(async () => {
    tt = await ThreeTier.start({ brokerKnock: 'spa' });
    await tt.waitUntilServing(90_000);
  });
  after(() => tt?.close());

  test('every broker opened every gateway with SPA, over both families, and requests are served', async () => {
    for (const gw of tt.gateways) {
      const config = JSON.parse(readFileSync(gw.guardConfig, 'utf8')) as {
        rotating: { clients: { name: string }[] };
        spa: { clients: { name: string }[] };
      };
      assert.deepEqual(
        config.spa.clients.map((c) => c.name),
        [...tt.brokers.map((b) => b.id), 'admin'],
      );
      assert.deepEqual(
        config.rotating.clients.map((c) => c.name),
        ['admin'],
        'brokers have no rotating secret',
      );
      const opened = gw.guard.jsonLines().filter((l) => l.event === 'spa' && l.outcome === 'opened');
      for (const b of tt.brokers) {
        const mine = opened.filter((l) => l.client === b.id);
        assert.ok(mine.length > 0, `${b.id} opened ${gw.id}`);
        const family = mine.every((l) => String(l.openedFor).includes(':')) ? 6 : 4;
        assert.equal(family, b.tunnelFamily, `${b.id} knocks over IPv${b.tunnelFamily}`);
      }
      assert.equal(
        gw.guard.jsonLines().filter((l) => l.event === 'knock' && l.outcome === 'opened').length,
        0,
      );
    }
    const answers = await tt.requests(
      'gw1',
      Array.from({ length: 10 }, () => ({ path: '/notes?limit=1' })),
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      Array.from({ length: 10 }, () => 200),
    );
  });

  test("the admin's SPA keys open the gateway's SSH for the admin", async () => {
    const gw = tt.gateways[0]!;
    const probe = async () =>
      (await tt.inet.runNode(AGENT, ['probe', gw.ip, '22', '--timeout', '300'])).stdout.trim();
    assert.equal(await probe(), 'filtered');
    const r = await tt.inet.runNode(CLI, ['knock', gw.ip, '--spa', '--spa-keys', tt.adminSpaKeys[gw.id]!]);
    assert.equal(r.code, 0, r.stderr);
    await eventually(async () => (await probe()) === 'open', 1500, 50);
  });
});
