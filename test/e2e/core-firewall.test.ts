// The core's rendered nftables table on a real kernel, in a namespace world: `nft -c` accepts it,
// and loaded in the core's namespace it lets the brokers' private addresses reach the listener
// and SSH (IPv4 and IPv6), no other host of the private network, no other port, and lets the
// core open no connection of its own but the egress rules it was given.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { renderCoreRuleset } from '../../core/firewall.js';
import { World, worldSkipReason, type Host } from '../../world/world.js';
import { AGENT } from './gateway.js';

const probe = async (from: Host, address: string, port: number) =>
  (await from.runNode(AGENT, ['probe', address, String(port), '--timeout', '800'])).stdout.trim();

describe('core firewall', { skip: worldSkipReason() }, () => {
  test('nft -c accepts the rendered table', async (t) => {
    const world = await World.create();
    t.after(() => world.close());
    const core = await world.addHost('core', { private: 1 });
    const dir = mkdtempSync(join(tmpdir(), 'nonstop-core-fw-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'nftables.conf');
    writeFileSync(
      file,
      renderCoreRuleset({
        addresses: ['10.0.0.30', 'fd00::30'],
        brokers: ['10.0.0.20', '10.0.1.0/24', 'fd00::20'],
        listenPort: 9443,
        sshPort: 22,
        icmpEcho: true,
        egress: [
          { protocol: 'udp', ports: [53], to: ['10.0.0.1', 'fd00::1'] },
          { protocol: 'udp', ports: [123] },
        ],
      }),
    );
    const r = await core.exec('nft', ['-c', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
  });

  test('only brokers reach the listener and SSH, over v4 and v6; the core dials nothing', async (t) => {
    const world = await World.create();
    t.after(() => world.close());
    const core = await world.addHost('core', { private: 1 });
    const broker = await world.addHost('broker', { private: 1 });
    const stranger = await world.addHost('stranger', { private: 1 });
    const [core4 = '', core6 = ''] = [core.addresses.private.v4[0], core.addresses.private.v6[0]];
    const [broker4 = '', broker6 = ''] = [broker.addresses.private.v4[0], broker.addresses.private.v6[0]];
    // Listeners on the core: its listener, SSH, and a port nobody was given (PostgreSQL's).
    const listeners = core.node(AGENT, ['http', '9443', '22', '5432']);
    await listeners.waitForLine((l) => l === 'ready');
    const brokerListener = broker.node(AGENT, ['http', '8080']);
    await brokerListener.waitForLine((l) => l === 'ready');
    // Before the table: everything is open, so "filtered" below is the table's doing.
    assert.equal(await probe(stranger, core4, 9443), 'open');
    assert.equal(await probe(core, broker4, 8080), 'open');

    const file = join(mkdtempSync(join(tmpdir(), 'nonstop-core-fw-')), 'nftables.conf');
    t.after(() => rmSync(join(file, '..'), { recursive: true, force: true }));
    writeFileSync(
      file,
      renderCoreRuleset({
        addresses: [core4, core6],
        brokers: [broker4, broker6],
        listenPort: 9443,
        sshPort: 22,
        icmpEcho: true,
        egress: [],
      }),
    );
    await core.check('nft', ['-f', file]);

    for (const address of [core4, core6]) {
      assert.equal(await probe(broker, address, 9443), 'open', `broker → ${address}:9443`);
      assert.equal(await probe(broker, address, 22), 'open', `broker → ${address}:22`);
      assert.equal(await probe(broker, address, 5432), 'filtered', `broker → ${address}:5432`);
      for (const port of [9443, 22, 5432])
        assert.equal(await probe(stranger, address, port), 'filtered', `stranger → ${address}:${port}`);
    }
    // Output policy drop: the core opens nothing (the kernel refuses the SYN locally).
    for (const address of [broker4, broker6])
      assert.notEqual(await probe(core, address, 8080), 'open', `core → ${address}:8080`);
    // Loopback still works (PostgreSQL's Unix socket aside, local tools use it).
    assert.equal(await probe(core, '127.0.0.1', 5432), 'open');
  });
});
