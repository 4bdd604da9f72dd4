// The PROXY protocol header (HAProxy's spec, versions 1 and 2) that a load balancer sends before
// a connection's own bytes, naming the client it accepted. Strict and bounded: a v1 line is at
// most 107 bytes, a v2 block at most `maxV2Bytes`; anything else is refused, never guessed at.
import { isIPv4, isIPv6 } from 'node:net';
import { canonicalIp, ipv6FromBytes } from './ip-prefix.js';

export interface ProxyEndpoint {
  readonly address: string;
  readonly port: number;
}

/**
 * `local`: the proxy's own connection (a health check), and `unknown`: a family the proxy could
 * not name; for both the connection's own addresses stand. `tcp4`/`tcp6` name the client.
 */
export type ProxyHeader =
  | { readonly version: 1 | 2; readonly kind: 'local' | 'unknown' }
  | {
      readonly version: 1 | 2;
      readonly kind: 'tcp4' | 'tcp6';
      readonly source: ProxyEndpoint;
      readonly destination: ProxyEndpoint;
    };

export type ProxyParse =
  /** Everything so far could start a header: wait for more bytes. */
  | { readonly state: 'more' }
  | { readonly state: 'invalid'; readonly reason: string }
  /** `length` bytes were the header; the connection's own bytes start after them. */
  | { readonly state: 'done'; readonly header: ProxyHeader; readonly length: number };

/** Spec 2.1: the longest v1 line ("PROXY TCP6 " + two full IPv6 addresses + ports + CRLF). */
export const V1_MAX_BYTES = 107;
/** The fixed part of a v2 header: signature, version/command, family, length. */
export const V2_FIXED_BYTES = 16;
/** Room for the addresses and the TLVs load balancers add (AWS, GCP, Azure: well under 1 KiB). */
export const V2_DEFAULT_MAX_BYTES = 2048;

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

const MORE: ProxyParse = { state: 'more' };

/** Reads a header from the start of `data` (the bytes received so far). */
export function parseProxyHeader(data: Buffer, maxV2Bytes = V2_DEFAULT_MAX_BYTES): ProxyParse {
  if (data.length === 0) return MORE;
  if (startsLike(data, V1_PREFIX)) return data.length < V1_PREFIX.length ? MORE : parseV1(data);
  if (startsLike(data, V2_SIGNATURE)) return data.length < V2_FIXED_BYTES ? MORE : parseV2(data, maxV2Bytes);
  return invalid('no PROXY protocol signature');
}

/** `data` and `signature` agree on their common length. */
function startsLike(data: Buffer, signature: Buffer): boolean {
  const n = Math.min(data.length, signature.length);
  return data.subarray(0, n).equals(signature.subarray(0, n));
}

function invalid(reason: string): ProxyParse {
  return { state: 'invalid', reason };
}

const PORT = /^(?:0|[1-9][0-9]{0,4})$/;

function parseV1(data: Buffer): ProxyParse {
  const end = data.indexOf(0x0a);
  if (end === -1) return data.length >= V1_MAX_BYTES ? invalid('v1 line longer than 107 bytes') : MORE;
  if (end + 1 > V1_MAX_BYTES) return invalid('v1 line longer than 107 bytes');
  if (data[end - 1] !== 0x0d) return invalid('v1 line does not end in CRLF');
  const line = data.toString('latin1', 0, end - 1);
  const length = end + 1;
  const fields = line.split(' ');
  const family = fields[1];
  if (family === 'UNKNOWN') return { state: 'done', header: { version: 1, kind: 'unknown' }, length };
  if (family !== 'TCP4' && family !== 'TCP6') return invalid('v1 protocol must be TCP4, TCP6 or UNKNOWN');
  if (fields.length !== 6) return invalid('v1 line must have source, destination and two ports');
  const [, , src, dst, sport, dport] = fields as [string, string, string, string, string, string];
  const isFamily = family === 'TCP4' ? isIPv4 : (a: string) => isIPv6(a) && !a.includes('%');
  if (!isFamily(src) || !isFamily(dst)) return invalid(`v1 addresses are not ${family} addresses`);
  if (!PORT.test(sport) || !PORT.test(dport) || Number(sport) > 65535 || Number(dport) > 65535) {
    return invalid('v1 ports must be 0..65535');
  }
  return {
    state: 'done',
    header: {
      version: 1,
      kind: family === 'TCP4' ? 'tcp4' : 'tcp6',
      source: { address: canonicalIp(src)!, port: Number(sport) },
      destination: { address: canonicalIp(dst)!, port: Number(dport) },
    },
    length,
  };
}

// Spec 2.2: the high nibble of byte 13 is the version (2), the low one the command; byte 14 is the
// address family (high nibble) and transport (low nibble).
const COMMAND_LOCAL = 0x0;
const COMMAND_PROXY = 0x1;
const TCP4 = 0x11;
const TCP6 = 0x21;
/** Valid combinations a receiver may treat as UNSPEC (spec: UDP, UNIX sockets). */
const OTHER_FAMILIES = new Set([0x00, 0x12, 0x22, 0x31, 0x32]);

function parseV2(data: Buffer, maxV2Bytes: number): ProxyParse {
  const versionCommand = data[12]!;
  if (versionCommand >> 4 !== 2) return invalid(`v2 version must be 2 (got ${versionCommand >> 4})`);
  const command = versionCommand & 0x0f;
  if (command !== COMMAND_LOCAL && command !== COMMAND_PROXY)
    return invalid(`v2 command ${command} is unknown`);
  const family = data[13]!;
  const bodyLength = data.readUInt16BE(14);
  const length = V2_FIXED_BYTES + bodyLength;
  if (length > maxV2Bytes) return invalid(`v2 header of ${length} bytes is over the ${maxV2Bytes} allowed`);
  if (family !== TCP4 && family !== TCP6 && !OTHER_FAMILIES.has(family)) {
    return invalid(`v2 address family 0x${family.toString(16).padStart(2, '0')} is unknown`);
  }
  if (data.length < length) return MORE;
  // LOCAL: the receiver uses the connection's own addresses and skips the address block (spec).
  if (command === COMMAND_LOCAL) return { state: 'done', header: { version: 2, kind: 'local' }, length };
  if (OTHER_FAMILIES.has(family)) return { state: 'done', header: { version: 2, kind: 'unknown' }, length };
  const body = data.subarray(V2_FIXED_BYTES, length);
  if (family === TCP4) {
    if (bodyLength < 12) return invalid('v2 TCP4 address block shorter than 12 bytes');
    const ip = (at: number) => `${body[at]}.${body[at + 1]}.${body[at + 2]}.${body[at + 3]}`;
    return {
      state: 'done',
      header: {
        version: 2,
        kind: 'tcp4',
        source: { address: ip(0), port: body.readUInt16BE(8) },
        destination: { address: ip(4), port: body.readUInt16BE(10) },
      },
      length,
    };
  }
  if (bodyLength < 36) return invalid('v2 TCP6 address block shorter than 36 bytes');
  return {
    state: 'done',
    header: {
      version: 2,
      kind: 'tcp6',
      source: { address: ipv6FromBytes(body.subarray(0, 16)), port: body.readUInt16BE(32) },
      destination: { address: ipv6FromBytes(body.subarray(16, 32)), port: body.readUInt16BE(34) },
    },
    length,
  };
}
