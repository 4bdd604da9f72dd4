import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sourceKey } from '../../lib/ip-prefix.js';

test('IPv4 counts per address; IPv4-mapped IPv6 is the IPv4 address it maps', () => {
  assert.equal(sourceKey('198.18.0.1', 64), '198.18.0.1');
  assert.equal(sourceKey('::ffff:198.18.0.1', 64), '198.18.0.1');
  assert.equal(sourceKey('::FFFF:c612:0001', 64), '198.18.0.1', 'the hex form too');
  assert.equal(sourceKey('::ffff:198.18.0.1', 128), '198.18.0.1');
});

test('IPv6 counts per prefix, written in RFC 5952 form', () => {
  assert.equal(sourceKey('2001:db8:1:2:a:b:c:d', 64), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:0DB8:0001:0002:ffff:ffff:ffff:ffff', 64), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:db8:1:2::1', 64), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:db8:1:3::1', 64), '2001:db8:1:3::/64', 'the next /64 is another key');
  assert.equal(sourceKey('2001:db8:1:2:a:b:c:d', 48), '2001:db8:1::/48');
  assert.equal(sourceKey('2001:db8:1:2ff:a:b:c:d', 56), '2001:db8:1:200::/56');
  assert.equal(sourceKey('2001:db8:1:2:a:b:c:d', 128), '2001:db8:1:2:a:b:c:d/128');
  assert.equal(sourceKey('2001:db8::1', 128), '2001:db8::1/128');
  assert.equal(sourceKey('fe80::1%eth0', 64), 'fe80::/64', 'a zone is not part of the address');
  assert.equal(sourceKey('64:ff9b::198.18.0.1', 96), '64:ff9b::/96', 'NAT64 is IPv6');
  assert.equal(sourceKey('::1', 64), '::/64');
  assert.equal(sourceKey('1:0:0:2:0:0:0:3', 128), '1:0:0:2::3/128', 'the longest zero run is ::');
});

test('what is not an address stays as it is', () => {
  assert.equal(sourceKey('unknown', 64), 'unknown');
  assert.equal(sourceKey('', 64), '');
  assert.equal(sourceKey('1:2:3', 64), '1:2:3');
});
