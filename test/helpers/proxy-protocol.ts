// PROXY protocol headers as a load balancer sends them, for tests of the gateway's PROXY mode.
import { isIPv4 } from 'node:net';

export interface Hop {
  readonly source: string;
  readonly sourcePort: number;
  readonly destination: string;
  readonly destinationPort: number;
}

export function proxyV1(hop: Hop): Buffer {
  const family = isIPv4(hop.source) ? 'TCP4' : 'TCP6';
  return Buffer.from(
    `PROXY ${family} ${hop.source} ${hop.destination} ${hop.sourcePort} ${hop.destinationPort}\r\n`,
    'latin1',
  );
}

export const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 PROXY (or LOCAL) header; `tlvs` are appended after the addresses as they are. */
export function proxyV2(hop: Hop | 'local', tlvs: Buffer = Buffer.alloc(0)): Buffer {
  if (hop === 'local') {
    return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00]), u16(tlvs.length), tlvs]);
  }
  const v4 = isIPv4(hop.source);
  const addresses = v4
    ? Buffer.concat([ipv4(hop.source), ipv4(hop.destination)])
    : Buffer.concat([ipv6(hop.source), ipv6(hop.destination)]);
  const body = Buffer.concat([addresses, u16(hop.sourcePort), u16(hop.destinationPort), tlvs]);
  return Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, v4 ? 0x11 : 0x21]), u16(body.length), body]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function ipv4(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

/** Full or `::`-compressed IPv6 text (no embedded IPv4) as 16 bytes. */
function ipv6(address: string): Buffer {
  const [left, right] = address.includes('::') ? address.split('::') : [address, undefined];
  const words = (s: string | undefined) =>
    s === undefined || s === '' ? [] : s.split(':').map((h) => parseInt(h, 16));
  const l = words(left);
  const r = words(right);
  const all = [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  return Buffer.concat(all.map(u16));
}
