// What the internet sees of a guarded gateway: nmap -sS finds 80 and 443 open and every other
// port filtered (no RST, no ICMP), the SSH port and the knock ports included.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { World, worldSkipReason, type Host } from '../../world/world.js';
import { startGateway, type Gateway } from './gateway.js';

const skip = worldSkipReason();
const SECRET = 'S'.repeat(43);

interface ScanResult {
  readonly ports: Map<number, string>;
  /** Ports nmap did not list one by one, by state ("filtered": 1000). */
  readonly collapsed: Map<string, number>;
  readonly raw: string;
}

async function nmapScan(
  from: Host,
  target: string,
  ports: string,
  ipv6 = false,
  type = '-sS',
): Promise<ScanResult> {
  const args = [
    type,
    '-Pn',
    '-n',
    '-T4',
    '--max-retries',
    '1',
    '--min-rate',
    '5000',
    '--reason',
    '-p',
    ports,
    '-oX',
    '-',
  ];
  const r = await from.exec('nmap', [...(ipv6 ? ['-6'] : []), ...args, target], { timeoutMs: 120000 });
  assert.equal(r.code, 0, r.stderr);
  const out: ScanResult = { ports: new Map(), collapsed: new Map(), raw: r.stdout };
  for (const m of r.stdout.matchAll(/<port protocol="(?:tcp|udp)" portid="(\d+)"><state state="([a-z|]+)"/g))
    out.ports.set(Number(m[1]), m[2]!);
  for (const m of r.stdout.matchAll(/<extraports state="([a-z|]+)" count="(\d+)"/g))
    out.collapsed.set(m[1]!, Number(m[2]));
  return out;
}

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
    const scan = await nmapScan(inet, gw.host.ip4, '1-65535');
    const open = [...scan.ports].filter(([, s]) => s === 'open').map(([p]) => p);
    assert.deepEqual(open, [80, 443], scan.raw);
    const notFiltered = [...scan.ports].filter(([p, s]) => s !== 'filtered' && p !== 80 && p !== 443);
    assert.deepEqual(notFiltered, [], 'no port answers with RST or ICMP');
    assert.deepEqual([...scan.collapsed.keys()], ['filtered'], scan.raw);
    assert.equal(scan.collapsed.get('filtered'), 65535 - 2);
  });

  test('SSH and knock ports, listed one by one, are filtered; so is everything over IPv6', async () => {
    const scan = await nmapScan(inet, gw.host.ip4, '22,7000,9000,20000,20050,20099,30000');
    assert.deepEqual([...scan.ports.values()], Array(7).fill('filtered'), scan.raw);
    const v6 = await nmapScan(inet, gw.host.ip6, '22,80,443,7000,9000,20050', true);
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
    const udp = await nmapScan(inet, gw.host.ip4, '53,8000,9000', false, '-sU');
    assert.deepEqual([...udp.ports.values()], Array(3).fill('open|filtered'), udp.raw);
  });
});
