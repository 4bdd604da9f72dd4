// The key a source address is counted under: an IPv4 address as itself, an IPv6 address by its
// prefix (one subscriber is usually given a whole /64, so counting per /128 would hand it 2^64
// rate-limit buckets). IPv4-mapped IPv6 (`::ffff:198.18.0.1`) is the IPv4 address it maps.
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
