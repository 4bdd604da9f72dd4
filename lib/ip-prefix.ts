// The key a source address is counted under: an IPv4 address as itself, an IPv6 address by its
// prefix (one subscriber is usually given a whole /64, so counting per /128 would hand it 2^64
// rate-limit buckets). IPv4-mapped IPv6 (`::ffff:198.18.0.1`) is the IPv4 address it maps.
// Also the address lists a gateway trusts (`clientAddress.trustedProxies`): CIDR prefixes.
import { isIPv4, isIPv6 } from 'node:net';

/** `198.18.0.1` → itself; `2001:db8:1:2:a:b:c:d` at /64 → `2001:db8:1:2::/64`. */
export function sourceKey(address: string, ipv6PrefixLength: number): string {
  if (isIPv4(address)) return address;
  const zone = address.indexOf('%');
  const bare = zone === -1 ? address : address.slice(0, zone);
  if (!isIPv6(bare)) return address;
  const words = ipv6Words(bare);
  if (isV4Mapped(words)) {
    return `${words[6]! >> 8}.${words[6]! & 0xff}.${words[7]! >> 8}.${words[7]! & 0xff}`;
  }
  const bits = Math.max(0, Math.min(128, ipv6PrefixLength));
  const masked = words.map((w, i) => {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    return keep === 0 ? 0 : w & ((0xffff << (16 - keep)) & 0xffff);
  });
  return `${compress(masked)}/${bits}`;
}

/** An IPv6 address (already checked by isIPv6) as its eight 16-bit words. */
function ipv6Words(address: string): number[] {
  let text = address.toLowerCase();
  // A trailing dotted quad (`::ffff:1.2.3.4`, `64:ff9b::1.2.3.4`) is the last two words.
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    const [a, b, c, d] = last.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parse = (part: string | undefined) =>
    part === undefined || part === '' ? [] : part.split(':').map((h) => Number.parseInt(h, 16));
  const gap = text.indexOf('::');
  if (gap === -1) return parse(text);
  const left = parse(text.slice(0, gap));
  const right = parse(text.slice(gap + 2));
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

function isV4Mapped(words: readonly number[]): boolean {
  return words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff;
}

/** RFC 5952 text: lower case, the longest run of two or more zero words as `::`. */
function compress(words: readonly number[]): string {
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best.len && j - i >= 2) best = { at: i, len: j - i };
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best.at === -1) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

/** An address in one spelling: IPv4 as itself, IPv4-mapped IPv6 as IPv4, IPv6 in RFC 5952 form. */
export function canonicalIp(address: string): string | undefined {
  if (isIPv4(address)) return address;
  const zone = address.indexOf('%');
  const bare = zone === -1 ? address : address.slice(0, zone);
  if (!isIPv6(bare)) return undefined;
  const words = ipv6Words(bare);
  if (isV4Mapped(words)) return wordsToIPv4(words);
  return compress(words);
}

/** A 16-byte IPv6 address (from a PROXY v2 header) as text, IPv4-mapped as IPv4. */
export function ipv6FromBytes(bytes: Uint8Array): string {
  const words = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  return isV4Mapped(words) ? wordsToIPv4(words) : compress(words);
}

function wordsToIPv4(words: readonly number[]): string {
  return `${words[6]! >> 8}.${words[6]! & 0xff}.${words[7]! >> 8}.${words[7]! & 0xff}`;
}

interface Prefix {
  readonly v6: boolean;
  readonly network: bigint;
  readonly bits: number;
}

/** The address as a number, with its width; an IPv4-mapped IPv6 address counts as IPv4. */
function toNumber(address: string): { v6: boolean; value: bigint } | undefined {
  const canonical = canonicalIp(address);
  if (canonical === undefined) return undefined;
  if (isIPv4(canonical)) {
    const value = canonical.split('.').reduce((n, octet) => (n << 8n) | BigInt(Number(octet)), 0n);
    return { v6: false, value };
  }
  return { v6: true, value: ipv6Words(canonical).reduce((n, w) => (n << 16n) | BigInt(w), 0n) };
}

/**
 * `198.18.0.0/15`, `2001:db8::/32`, or a bare address (a /32 or /128). Refuses a prefix with
 * host bits set (`10.0.0.1/8`): trusting a whole /8 for what was meant as one host is the kind of
 * mistake that should fail at start.
 */
export function parseCidr(text: string): Prefix | { error: string } {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  if (address.includes('%')) return { error: 'must not carry a zone (%...)' };
  const parsed = toNumber(address);
  if (parsed === undefined) return { error: `${JSON.stringify(address)} is not an IP address` };
  // An IPv4-mapped address with a prefix is counted in IPv6 bits by its writer; refuse rather than guess.
  if (slash !== -1 && !isIPv4(address) && !parsed.v6) {
    return { error: 'an IPv4-mapped IPv6 prefix is ambiguous: write the IPv4 prefix' };
  }
  const width = parsed.v6 ? 128 : 32;
  let bits = width;
  if (slash !== -1) {
    const suffix = text.slice(slash + 1);
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(suffix) || Number(suffix) > width) {
      return { error: `prefix length must be 0..${width} (got ${JSON.stringify(suffix)})` };
    }
    bits = Number(suffix);
  }
  const host = (1n << BigInt(width - bits)) - 1n;
  if ((parsed.value & host) !== 0n) {
    return { error: `has host bits set beyond /${bits}` };
  }
  return { v6: parsed.v6, network: parsed.value, bits };
}

/** A set of CIDR prefixes: is an address in one of them. */
export class AddressSet {
  private readonly prefixes: readonly Prefix[];

  /** Throws on the first entry that does not parse; callers check entries first (config/). */
  constructor(entries: readonly string[]) {
    this.prefixes = entries.map((entry) => {
      const p = parseCidr(entry);
      if ('error' in p) throw new Error(`${JSON.stringify(entry)}: ${p.error}`);
      return p;
    });
  }

  get size(): number {
    return this.prefixes.length;
  }

  has(address: string | undefined): boolean {
    if (address === undefined || this.prefixes.length === 0) return false;
    const a = toNumber(address);
    if (a === undefined) return false;
    const width = a.v6 ? 128n : 32n;
    return this.prefixes.some(
      (p) => p.v6 === a.v6 && a.value >> (width - BigInt(p.bits)) === p.network >> (width - BigInt(p.bits)),
    );
  }
}
