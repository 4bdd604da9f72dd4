import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readDatagram, readKnock } from '../../knock/packet.js';

function tcpHeader(dport: number, flags: number): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(40000, 0);
  h.writeUInt16BE(dport, 2);
  h[12] = 0x50;
  h[13] = flags;
  return h;
}

function ipv4(payload: Buffer, optionWords = 0): Buffer {
  const ip = Buffer.alloc(20 + optionWords * 4);
  ip[0] = 0x40 | (5 + optionWords);
  ip[9] = 253;
  return Buffer.concat([ip, payload]);
}

test('IPv4 raw sockets deliver the IP header; options are skipped', () => {
  assert.deepEqual(readKnock(ipv4(tcpHeader(7000, 0x02)), true, 'tcp'), { port: 7000, protocol: 'tcp' });
  assert.deepEqual(readKnock(ipv4(tcpHeader(7001, 0x02), 2), true, 'tcp'), { port: 7001, protocol: 'tcp' });
});

test('IPv6 raw sockets deliver the transport header only', () => {
  assert.deepEqual(readKnock(tcpHeader(9000, 0x02), false, 'tcp'), { port: 9000, protocol: 'tcp' });
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(8000, 2);
  assert.deepEqual(readKnock(udp, false, 'udp'), { port: 8000, protocol: 'udp' });
  assert.deepEqual(readKnock(ipv4(udp), true, 'udp'), { port: 8000, protocol: 'udp' });
});

test('only pure SYNs count; short or malformed packets are ignored', () => {
  assert.equal(readKnock(ipv4(tcpHeader(7000, 0x12)), true, 'tcp'), undefined, 'SYN+ACK');
  assert.equal(readKnock(ipv4(tcpHeader(7000, 0x04)), true, 'tcp'), undefined, 'RST');
  assert.equal(readKnock(ipv4(tcpHeader(7000, 0x03)), true, 'tcp'), undefined, 'SYN+FIN');
  assert.equal(readKnock(Buffer.alloc(10), true, 'tcp'), undefined);
  assert.equal(readKnock(ipv4(Buffer.alloc(4)), true, 'udp'), undefined);
  const v6 = ipv4(tcpHeader(7000, 0x02));
  v6[0] = 0x65;
  assert.equal(readKnock(v6, true, 'tcp'), undefined, 'not IPv4');
  assert.equal(readKnock(tcpHeader(0, 0x02), false, 'tcp'), undefined, 'port 0');
});

test('an SPA datagram: its port and exactly the payload its UDP length covers', () => {
  const payload = Buffer.from('U2FsdGVkX1 is stripped; this stands for the rest');
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(40000, 0);
  udp.writeUInt16BE(62201, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  const datagram = Buffer.concat([udp, payload]);
  for (const [buf, v4] of [
    [ipv4(datagram, 1), true],
    [datagram, false],
  ] as const) {
    const read = readDatagram(Buffer.concat([buf, Buffer.from('trailer')]), v4);
    assert.equal(read?.port, 62201);
    assert.equal(read?.payload.toString(), payload.toString(), 'bytes past the UDP length are not read');
  }
  // A UDP length that claims more than arrived (a datagram cut at the read buffer), or less
  // than its own header: nothing.
  const cut = Buffer.from(datagram);
  cut.writeUInt16BE(8 + payload.length + 1, 4);
  assert.equal(readDatagram(cut, false), undefined);
  cut.writeUInt16BE(7, 4);
  assert.equal(readDatagram(cut, false), undefined);
  assert.equal(readDatagram(Buffer.alloc(7), false), undefined);
});
