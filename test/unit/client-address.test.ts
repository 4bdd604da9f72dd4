import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { clientAddressProblems } from '../../config/client-address.js';
import { gatewayDocument } from '../../config/render/gateway.js';
import {
  ClientAddresses,
  clientFrom,
  forwardedHops,
  MAX_HOPS,
  xForwardedForHops,
} from '../../gateway/client-address.js';
import { AddressSet, canonicalIp, parseCidr } from '../../lib/ip-prefix.js';
import { silentLogger } from '../../lib/log.js';

const trusted = new AddressSet(['10.0.0.0/8', '2001:db8:ff::/48', '198.18.5.5']);

function fakeRequest(remoteAddress: string, headers: Record<string, string | string[]>): IncomingMessage {
  const socket = { remoteAddress, remotePort: 5555, localAddress: '198.18.1.1', localPort: 443 };
  return { socket, headers } as unknown as IncomingMessage;
}

test('CIDR prefixes: IPv4, IPv6, single addresses; IPv4-mapped peers match IPv4 prefixes', () => {
  assert.ok(trusted.has('10.1.2.3'));
  assert.ok(trusted.has('::ffff:10.1.2.3'));
  assert.ok(trusted.has('198.18.5.5'));
  assert.ok(!trusted.has('198.18.5.6'));
  assert.ok(!trusted.has('11.0.0.1'));
  assert.ok(trusted.has('2001:db8:ff:1::9'));
  assert.ok(!trusted.has('2001:db8:fe::9'));
  assert.ok(!trusted.has('::a00:1'), 'an IPv6 address is not an IPv4 one with the same bits');
  assert.ok(!trusted.has(undefined));
  assert.ok(!trusted.has('not-an-ip'));
  assert.ok(new AddressSet(['0.0.0.0/0']).has('1.2.3.4'));
  assert.ok(!new AddressSet(['0.0.0.0/0']).has('2001:db8::1'));
  assert.equal(canonicalIp('2001:DB8:0::1'), '2001:db8::1');
  assert.equal(canonicalIp('::ffff:198.18.0.1'), '198.18.0.1');
});

test('a CIDR that does not parse is named by its field', () => {
  for (const bad of [
    '10.0.0.1/8',
    '10.0.0.0/33',
    '10.0.0.0/',
    '10.0.0.0/08',
    'example.com',
    '2001:db8::1/64',
    'fe80::/10%eth0',
  ]) {
    assert.ok('error' in parseCidr(bad), bad);
  }
  const problems = clientAddressProblems({
    clientAddress: { trustedProxies: ['10.0.0.0/8', '10.0.0.1/8'] },
    http: { proxyProtocol: false },
  });
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.field, 'clientAddress.trustedProxies[1]');
  assert.match(problems[0]!.expected, /host bits/);
  const none = clientAddressProblems({
    clientAddress: { trustedProxies: [] },
    http: { proxyProtocol: true },
    https: { proxyProtocol: false },
  });
  assert.deepEqual(
    none.map((p) => p.field),
    ['http.proxyProtocol'],
    'PROXY mode with nobody trusted would close every connection',
  );
});

test('X-Forwarded-For: from the right, past trusted proxies, to the first untrusted address', () => {
  const pick = (value: string, peer = '10.0.0.1') => clientFrom(peer, xForwardedForHops(value), trusted);
  assert.deepEqual(pick('203.0.113.9'), { address: '203.0.113.9' });
  assert.deepEqual(pick('198.51.100.1, 203.0.113.9, 10.2.2.2, 10.3.3.3'), { address: '203.0.113.9' });
  assert.deepEqual(pick('203.0.113.9:4711,[2001:db8::9]:443'), { address: '2001:db8::9' });
  assert.deepEqual(pick('2001:DB8::9'), { address: '2001:db8::9' });
  assert.deepEqual(pick('10.2.2.2, 10.3.3.3'), { address: '10.2.2.2' }, 'all trusted: the farthest');
  // The client's own forged entries are to the left of what the proxy appended: never reached.
  assert.deepEqual(pick('garbage, 1.1.1.1, 203.0.113.9'), { address: '203.0.113.9' });
  assert.ok('ignored' in pick('203.0.113.9, garbage'), 'malformed where it counts');
  assert.ok('ignored' in pick('203.0.113.9,'));
  assert.ok('ignored' in pick(''));
  assert.ok('ignored' in pick(',203.0.113.9, 10.0.0.2,'));
  assert.ok('ignored' in pick('203.0.113.9:99999x'));
  assert.ok('ignored' in pick('[198.18.0.1]'), 'brackets hold IPv6 only');
  assert.ok(
    'ignored' in pick(`203.0.113.9, ${Array.from({ length: MAX_HOPS + 1 }, () => '10.0.0.9').join(', ')}`),
  );
});

test('Forwarded (RFC 7239): quoted IPv6, ports, unknown and obfuscated hops, malformed values', () => {
  const pick = (value: string) => clientFrom('10.0.0.1', forwardedHops(value), trusted);
  assert.deepEqual(pick('for=203.0.113.9'), { address: '203.0.113.9' });
  assert.deepEqual(pick('For="[2001:db8:cafe::17]:4711"'), { address: '2001:db8:cafe::17' });
  assert.deepEqual(pick('for=192.0.2.60;proto=http;by=203.0.113.43'), { address: '192.0.2.60' });
  assert.deepEqual(pick('for=192.0.2.43, for=198.51.100.17;by=10.0.0.7, for="10.4.4.4:80"'), {
    address: '198.51.100.17',
  });
  assert.deepEqual(pick('for="_gazonk", for=10.4.4.4'), { ignored: 'a hop names no address' });
  assert.deepEqual(pick('for=unknown'), { ignored: 'a hop names no address' });
  assert.deepEqual(pick('proto=https'), { ignored: 'a hop names no address' });
  assert.ok('ignored' in pick('for="203.0.113.9'), 'unterminated quote');
  assert.ok('ignored' in pick('for=[2001:db8::1]'), 'IPv6 must be quoted');
  assert.ok('ignored' in pick('for=1.2.3.4;for=5.6.7.8'));
  assert.ok('ignored' in pick('for'));
  assert.ok('ignored' in pick(`for=1.2.3.4;x="${'a'.repeat(9000)}"`), 'bounded');
  assert.deepEqual(pick('for="198.51.100.1,x", for=203.0.113.9'), { address: '203.0.113.9' });
});

test('the peer decides: a forwarding header counts only from a trusted proxy, and only the one chosen', () => {
  const log = silentLogger();
  const xff = new ClientAddresses(
    { trustedProxies: ['10.0.0.0/8'], forwardedHeader: 'x-forwarded-for', proxyHeaderTimeoutMs: 5000 },
    log,
  );
  assert.equal(xff.of(fakeRequest('::ffff:10.0.0.1', { 'x-forwarded-for': '203.0.113.9' })), '203.0.113.9');
  assert.equal(xff.of(fakeRequest('198.51.100.4', { 'x-forwarded-for': '203.0.113.9' })), '198.51.100.4');
  assert.equal(xff.of(fakeRequest('::ffff:198.51.100.4', {})), '198.51.100.4');
  assert.equal(
    xff.of(fakeRequest('10.0.0.1', { forwarded: 'for=203.0.113.9' })),
    '10.0.0.1',
    'not the chosen header',
  );
  assert.equal(xff.of(fakeRequest('10.0.0.1', { 'x-forwarded-for': 'nonsense' })), '10.0.0.1');
  const fwd = new ClientAddresses(
    { trustedProxies: ['10.0.0.0/8'], forwardedHeader: 'forwarded', proxyHeaderTimeoutMs: 5000 },
    log,
  );
  assert.equal(
    fwd.of(fakeRequest('10.0.0.1', { forwarded: 'for=203.0.113.9', 'x-forwarded-for': '1.1.1.1' })),
    '203.0.113.9',
  );
  const none = new ClientAddresses(
    { trustedProxies: ['10.0.0.0/8'], forwardedHeader: 'none', proxyHeaderTimeoutMs: 5000 },
    log,
  );
  assert.equal(none.of(fakeRequest('10.0.0.1', { 'x-forwarded-for': '203.0.113.9' })), '10.0.0.1');
});

test('render: a deployment sets PROXY mode and trusted proxies; a bad CIDR fails the render', () => {
  const input = { id: 'gw1', configDir: '/etc/nonstop', tunnels: [{ broker: 'b1', port: 16379 }] };
  const doc = gatewayDocument({
    ...input,
    httpsProxyProtocol: true,
    clientAddress: { trustedProxies: ['198.18.0.0/15', '2001:db8::/32'], forwardedHeader: 'none' },
  });
  assert.equal(doc.https.proxyProtocol, true);
  assert.equal(doc.http.proxyProtocol, undefined, 'port 80 keeps the default (off)');
  assert.deepEqual(doc.clientAddress?.trustedProxies, ['198.18.0.0/15', '2001:db8::/32']);
  assert.equal(gatewayDocument(input).clientAddress, undefined);
  assert.throws(
    () =>
      gatewayDocument({ ...input, clientAddress: { trustedProxies: ['198.18.0.0/15', '198.18.0.1/15'] } }),
    /gateway\.json of gw1: field "clientAddress\.trustedProxies\[1\]" must be a CIDR prefix/,
  );
  assert.throws(() => gatewayDocument({ ...input, httpProxyProtocol: true }), /field "http\.proxyProtocol"/);
});
