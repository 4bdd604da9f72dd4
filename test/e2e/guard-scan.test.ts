// What the internet sees of a guarded gateway: nmap -sS finds 80 and 443 open and every other
// port filtered (no RST, no ICMP), the SSH port and the knock ports included.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { World, worldSkipReason, type Host } from '../../world/world.js';
import { nmapOne } from '../world/nmap.js';
import { startGateway, type Gateway } from './gateway.js';

const skip = worldSkipReason();
const SECRET = 'S'.repeat(43);

describe('port scan of a guarded gateway', { skip }, () => {
  let world: World;
  let gw: Gateway;
  let inet: Host;

  before(async () => {
    world = await World.create();
    inet = await world.addHost('inet', { public: 1 });
    gw = await startGateway(world, 'gw1', {
      kind: 'guard',
      gateway: 'gw1',
      static: [{ name: 'ops', sequence: ['7000', '8000:udp', '9000'] }],
      rotating: { portMin: 20000, portMax: 20099, clients: [{ name: 'alice', secret: SECRET }] },
    });
  });
  after(() => world?.close());

  test('all 65535 TCP ports: only 80 and 443 are open, every other one filtered', async () => {
    const scan = await nmapOne(inet, gw.host.ip4, '1-65535');
    const open = [...scan.ports].filter(([, s]) => s === 'open').map(([p]) => p);
    assert.deepEqual(open, [80, 443], scan.raw);
    const notFiltered = [...scan.ports].filter(([p, s]) => s !== 'filtered' && p !== 80 && p !== 443);
    assert.deepEqual(notFiltered, [], 'no port answers with RST or ICMP');
    assert.deepEqual([...scan.collapsed.keys()], ['filtered'], scan.raw);
    assert.equal(scan.collapsed.get('filtered'), 65535 - 2);
  });

  test('SSH and knock ports, listed one by one, are filtered; so is everything over IPv6', async () => {
    const scan = await nmapOne(inet, gw.host.ip4, '22,7000,9000,20000,20050,20099,30000');
    assert.deepEqual([...scan.ports.values()], Array(7).fill('filtered'), scan.raw);
    const v6 = await nmapOne(inet, gw.host.ip6, '22,80,443,7000,9000,20050', { ipv6: true });
    assert.deepEqual(
      [...v6.ports],
      [
        [22, 'filtered'],
        [80, 'open'],
        [443, 'open'],
        [7000, 'filtered'],
        [9000, 'filtered'],
        [20050, 'filtered'],
      ],
      v6.raw,
    );
  });

  test('UDP: the knock port and others say nothing either (no ICMP port unreachable)', async () => {
    const udp = await nmapOne(inet, gw.host.ip4, '53,8000,9000', { type: '-sU' });
    assert.deepEqual([...udp.ports.values()], Array(3).fill('open|filtered'), udp.raw);
  });
});
