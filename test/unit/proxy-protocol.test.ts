import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseProxyHeader, V1_MAX_BYTES, type ProxyParse } from '../../lib/proxy-protocol.js';
import { proxyV1, proxyV2, V2_SIGNATURE } from '../helpers/proxy-protocol.js';

const hop4 = { source: '198.18.0.7', sourcePort: 40001, destination: '198.18.1.1', destinationPort: 443 };
const hop6 = {
  source: '2001:db8:0:0:0:0:0:7',
  sourcePort: 40002,
  destination: '2001:db8::1',
  destinationPort: 80,
};

function done(p: ProxyParse) {
  assert.equal(p.state, 'done', JSON.stringify(p));
  return p;
}

function reason(p: ProxyParse): string {
  assert.equal(p.state, 'invalid', JSON.stringify(p));
  return p.reason;
}

test('v1 TCP4 and TCP6 name the client; the bytes after the header are not part of it', () => {
  const request = Buffer.from('GET / HTTP/1.1\r\n\r\n');
  const v4 = done(parseProxyHeader(Buffer.concat([proxyV1(hop4), request])));
  assert.equal(v4.length, proxyV1(hop4).length);
  assert.deepEqual(v4.header, {
    version: 1,
    kind: 'tcp4',
    source: { address: '198.18.0.7', port: 40001 },
    destination: { address: '198.18.1.1', port: 443 },
  });
  const v6 = done(parseProxyHeader(proxyV1(hop6)));
  assert.equal(v6.header.kind, 'tcp6');
  assert.ok(v6.header.kind === 'tcp6');
  assert.equal(v6.header.source.address, '2001:db8::7', 'written in one canonical form');
  assert.equal(v6.header.destination.port, 80);
});

test('v1 UNKNOWN is accepted without addresses, whatever follows it on the line', () => {
  const plain = done(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')));
  assert.deepEqual(plain.header, { version: 1, kind: 'unknown' });
  const extra = done(parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nGET')));
  assert.equal(extra.length, 'PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'.length);
});

test('v1: anything not exactly the spec is refused', () => {
  const bad = [
    'PROXY TCP4 198.18.0.7 198.18.1.1 40001\r\n',
    'PROXY TCP4 198.18.0.7  198.18.1.1 40001 443\r\n',
    'PROXY TCP4 198.18.0.7 198.18.1.1 40001 443\n',
    'PROXY TCP4 198.18.0.7 198.18.1.1 40001 65536\r\n',
    'PROXY TCP4 198.18.0.7 198.18.1.1 040001 443\r\n',
    'PROXY TCP4 2001:db8::7 198.18.1.1 40001 443\r\n',
    'PROXY TCP6 198.18.0.7 198.18.1.1 40001 443\r\n',
    'PROXY TCP6 fe80::1%eth0 2001:db8::1 40001 443\r\n',
    'PROXY TCP4 198.018.0.7 198.18.1.1 40001 443\r\n',
    'PROXY UDP4 198.18.0.7 198.18.1.1 40001 443\r\n',
    'PROXY tcp4 198.18.0.7 198.18.1.1 40001 443\r\n',
  ];
  for (const line of bad) {
    assert.equal(parseProxyHeader(Buffer.from(line)).state, 'invalid', line);
  }
});

test('v1 longer than 107 bytes is refused as soon as that is certain', () => {
  const long = Buffer.from(`PROXY UNKNOWN ${'x'.repeat(120)}`);
  assert.match(reason(parseProxyHeader(long)), /107/);
  // 107 bytes with the CRLF still fits; one more does not.
  const fits = Buffer.from(`PROXY UNKNOWN ${'x'.repeat(V1_MAX_BYTES - 16)}\r\n`);
  assert.equal(fits.length, V1_MAX_BYTES);
  assert.equal(parseProxyHeader(fits).state, 'done');
  const over = Buffer.from(`PROXY UNKNOWN ${'x'.repeat(V1_MAX_BYTES - 15)}\r\n`);
  assert.equal(parseProxyHeader(over).state, 'invalid');
  // Without its line end, 106 bytes may still become a header; 107 cannot.
  assert.equal(parseProxyHeader(fits.subarray(0, V1_MAX_BYTES - 1)).state, 'more');
  assert.equal(
    parseProxyHeader(Buffer.concat([fits.subarray(0, V1_MAX_BYTES - 2), Buffer.from('xx')])).state,
    'invalid',
  );
});

test('v2 PROXY TCP4 and TCP6, with TLVs skipped', () => {
  const tlv = Buffer.from([0x04, 0x00, 0x03, 0x61, 0x62, 0x63]);
  const v4 = done(parseProxyHeader(Buffer.concat([proxyV2(hop4, tlv), Buffer.from('\x16\x03\x01')])));
  assert.equal(v4.length, 16 + 12 + tlv.length);
  assert.deepEqual(v4.header, {
    version: 2,
    kind: 'tcp4',
    source: { address: '198.18.0.7', port: 40001 },
    destination: { address: '198.18.1.1', port: 443 },
  });
  const v6 = done(parseProxyHeader(proxyV2(hop6)));
  assert.equal(v6.length, 16 + 36);
  assert.ok(v6.header.kind === 'tcp6');
  assert.equal(v6.header.source.address, '2001:db8::7');
  assert.equal(v6.header.source.port, 40002);
  const mapped = done(
    parseProxyHeader(proxyV2({ ...hop6, source: '0:0:0:0:0:ffff:c612:0009', destination: '::1' })),
  );
  assert.ok(mapped.header.kind === 'tcp6');
  assert.equal(mapped.header.source.address, '198.18.0.9', 'an IPv4-mapped source is its IPv4 address');
});

test('v2 LOCAL and the families a receiver falls back on are accepted without an address', () => {
  const local = done(parseProxyHeader(proxyV2('local')));
  assert.deepEqual(local.header, { version: 2, kind: 'local' });
  assert.equal(local.length, 16);
  const localWithBlock = done(parseProxyHeader(proxyV2('local', Buffer.alloc(12))));
  assert.equal(localWithBlock.length, 28, 'a LOCAL address block is skipped');
  for (const family of [0x00, 0x12, 0x31]) {
    const header = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, family, 0x00, 0x00])]);
    assert.deepEqual(done(parseProxyHeader(header)).header, { version: 2, kind: 'unknown' });
  }
});

test('v2: wrong version, command, family, short address blocks and oversize are refused', () => {
  const head = (verCmd: number, fam: number, len: number) =>
    Buffer.concat([V2_SIGNATURE, Buffer.from([verCmd, fam]), Buffer.from([len >> 8, len & 0xff])]);
  assert.match(reason(parseProxyHeader(head(0x11, 0x11, 12))), /version/);
  assert.match(reason(parseProxyHeader(head(0x22, 0x11, 12))), /command/);
  assert.match(reason(parseProxyHeader(head(0x21, 0x41, 12))), /family/);
  assert.match(reason(parseProxyHeader(Buffer.concat([head(0x21, 0x11, 8), Buffer.alloc(8)]))), /TCP4/);
  assert.match(reason(parseProxyHeader(Buffer.concat([head(0x21, 0x21, 12), Buffer.alloc(12)]))), /TCP6/);
  // Refused from the fixed part alone: no waiting for 65535 bytes that are never kept.
  assert.match(reason(parseProxyHeader(head(0x21, 0x11, 65535))), /over the 2048 allowed/);
  assert.equal(parseProxyHeader(head(0x21, 0x11, 3000), 4096).state, 'more', 'the bound is the caller’s');
});

test('a wrong signature is refused from its first byte that differs', () => {
  assert.match(reason(parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n'))), /signature/);
  assert.match(reason(parseProxyHeader(Buffer.from([0x16, 0x03, 0x01]))), /signature/, 'a TLS hello');
  assert.equal(parseProxyHeader(Buffer.from('PROX')).state, 'more');
  assert.equal(parseProxyHeader(Buffer.from('PROXZ')).state, 'invalid');
  const sig = Buffer.from(V2_SIGNATURE);
  sig[11] = 0x0b;
  assert.equal(parseProxyHeader(sig).state, 'invalid');
  assert.equal(parseProxyHeader(V2_SIGNATURE.subarray(0, 7)).state, 'more');
});

test('a header split across TCP chunks: more until its last byte, then the same result', () => {
  for (const whole of [proxyV1(hop4), proxyV1(hop6), proxyV2(hop4), proxyV2(hop6), proxyV2('local')]) {
    for (let cut = 0; cut < whole.length; cut++) {
      assert.equal(
        parseProxyHeader(whole.subarray(0, cut)).state,
        'more',
        `cut at ${cut} of ${whole.length}`,
      );
    }
    assert.deepEqual(parseProxyHeader(whole), parseProxyHeader(Buffer.concat([whole, Buffer.from('rest')])));
  }
});
