// Reads the knock out of a diverted packet. IPv4 raw sockets deliver the IP header too; IPv6
// raw sockets deliver the transport header only. The transport header is the original TCP or
// UDP header: only the protocol number in the IP header was rewritten.
import type { KnockProtocol, KnockStep } from '../config/knock.js';

export function readKnock(buf: Buffer, ipv4: boolean, protocol: KnockProtocol): KnockStep | undefined {
  let l4 = 0;
  if (ipv4) {
    if (buf.length < 20 || buf[0]! >> 4 !== 4) return undefined;
    l4 = (buf[0]! & 0x0f) * 4;
  }
  if (buf.length < l4 + (protocol === 'tcp' ? 14 : 8)) return undefined;
  if (protocol === 'tcp') {
    const flags = buf[l4 + 13]! & 0x17; // FIN SYN RST ACK
    if (flags !== 0x02) return undefined; // the kernel already checked; cheap to be sure
  }
  const port = buf.readUInt16BE(l4 + 2);
  return port === 0 ? undefined : { port, protocol };
}

/**
 * The destination port and payload of a diverted UDP datagram (an SPA packet), bounded by the
 * UDP header's own length; undefined when the header is cut short or claims more than arrived.
 */
export function readDatagram(buf: Buffer, ipv4: boolean): { port: number; payload: Buffer } | undefined {
  let l4 = 0;
  if (ipv4) {
    if (buf.length < 20 || buf[0]! >> 4 !== 4) return undefined;
    l4 = (buf[0]! & 0x0f) * 4;
  }
  if (buf.length < l4 + 8) return undefined;
  const length = buf.readUInt16BE(l4 + 4);
  if (length < 8 || l4 + length > buf.length) return undefined;
  return { port: buf.readUInt16BE(l4 + 2), payload: buf.subarray(l4 + 8, l4 + length) };
}
