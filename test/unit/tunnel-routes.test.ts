// The quickack host routes a broker gives its ways to the gateways (broker/tunnel-routes.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRouteGet, quickackRouteArgs, tunnelHosts } from '../../broker/tunnel-routes.js';

test('the way `ip route get` reports becomes a host route with quickack, the same way', () => {
  const onLink = parseRouteGet(
    '10.1.0.5',
    '[{"dst":"10.1.0.5","dev":"pub0","prefsrc":"10.1.0.9","flags":[]}]',
  );
  assert.deepEqual(quickackRouteArgs('10.1.0.5', onLink), [
    'route',
    'replace',
    '10.1.0.5/32',
    'dev',
    'pub0',
    'quickack',
    '1',
  ]);
  const routed = parseRouteGet(
    '2001:db8::7',
    '[{"dst":"2001:db8::7","gateway":"fe80::1","dev":"eth0","prefsrc":"2001:db8::9","flags":[]}]',
  );
  assert.deepEqual(quickackRouteArgs('2001:db8::7', routed), [
    '-6',
    'route',
    'replace',
    '2001:db8::7/128',
    'via',
    'fe80::1',
    'dev',
    'eth0',
    'quickack',
    '1',
  ]);
});

test('an answer without a device, not JSON, or this host itself is refused with the address', () => {
  assert.throws(
    () => parseRouteGet('10.1.0.5', 'RTNETLINK answers: Network is unreachable'),
    /10\.1\.0\.5: not JSON/,
  );
  assert.throws(() => parseRouteGet('10.1.0.5', '[]'), /no route with a device/);
  assert.throws(() => parseRouteGet('127.0.0.1', '[{"dst":"127.0.0.1","dev":"lo"}]'), /this host/);
});

test('each gateway host once; a gateway without ssh (same machine) has none', () => {
  const ssh = (host: string) => ({ host }) as never;
  assert.deepEqual(
    tunnelHosts({
      gateways: [
        { id: 'gw1', ssh: ssh('10.1.0.5') },
        { id: 'gw2', ssh: ssh('gw2.example.net') },
        { id: 'gw3', ssh: ssh('10.1.0.5') },
        { id: 'local' },
      ] as never,
    }),
    ['10.1.0.5', 'gw2.example.net'],
  );
});
