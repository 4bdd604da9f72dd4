// Renders the guard's nftables table (`inet nonstop`) from its config. The table is replaced as
// a whole in one `nft -f` transaction, so there is never a moment with half a ruleset.
//
// How knocks reach the daemon without HTTP traffic doing so: a raw IPPROTO_TCP socket sees every
// TCP packet the input hook accepts, 80/443 included. So, before conntrack, the `divert` chain
// rewrites the IP protocol number of pure SYNs (and UDP datagrams) to knock ports to an
// experimental protocol number (RFC 3692: 253, 254). The TCP and UDP stacks never see them (no
// RST, no ICMP port unreachable); only the daemon's raw sockets for those numbers do. Packets
// that arrive carrying 253/254 from outside are dropped first, so only the kernel makes them.
import type { GuardConfig, KnockStep } from '../config/knock.js';
import { sourceKey } from '../lib/ip-prefix.js';

export const TABLE = 'nonstop';
export const SET_V4 = 'ssh_open4';
export const SET_V6 = 'ssh_open6';
/** Per-source rate meters of the SPA port (dynamic sets: an entry per source while it sends). */
const SPA_RATE_V4 = 'spa_rate4';
const SPA_RATE_V6 = 'spa_rate6';

export interface KnockPorts {
  readonly tcp: readonly KnockStep[];
  readonly udp: readonly KnockStep[];
}

function portList(steps: readonly KnockStep[], range?: { min: number; max: number }): string {
  const items = [...new Set(steps.map((s) => s.port))].sort((a, b) => a - b).map(String);
  if (range !== undefined) items.push(`${range.min}-${range.max}`);
  return `{ ${items.join(', ')} }`;
}

export function renderRuleset(config: GuardConfig, ports: KnockPorts): string {
  const { tcp: divTcp, udp: divUdp } = config.divertProtocols;
  const r = config.rotating;
  const range = r.clients.length > 0 ? { min: r.portMin, max: r.portMax } : undefined;
  const hasTcp = ports.tcp.length > 0 || range !== undefined;
  const tcpPorts = portList(ports.tcp, range);
  const spa = config.spa;
  const udpSteps =
    spa === undefined ? ports.udp : [...ports.udp, { port: spa.port, protocol: 'udp' as const }];
  const udpPorts = portList(udpSteps);
  const syn = 'tcp flags & (fin | syn | rst | ack) == syn';
  // Only packets for this host (were it ever to route, others' traffic passes untouched);
  // checked after the cheap port match so that other traffic costs no route lookup.
  const local = 'fib daddr type local';
  const publicPorts = `{ ${config.publicTcpPorts.join(', ')} }`;

  const divert: string[] = [`meta l4proto { ${divTcp}, ${divUdp} } drop`];
  if (hasTcp) {
    divert.push(`meta nfproto ipv4 tcp dport ${tcpPorts} ${syn} ${local} ip protocol set ${divTcp} notrack`);
    divert.push(`ip6 nexthdr tcp tcp dport ${tcpPorts} ${syn} ${local} ip6 nexthdr set ${divTcp} notrack`);
  }
  if (spa !== undefined) {
    // SPA datagrams cost the daemon an HMAC per client; these bound how many reach it. Per
    // source first (an IPv6 source is its prefix), so that one sender cannot use up the shared
    // budget; then for all. A source beyond the meter's size is not metered: the shared budget
    // still holds. Everything over is dropped here, before the daemon, without an answer.
    const mask = sourceKey('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', config.ipv6PrefixLength).split('/')[0];
    const perSource = `limit rate over ${spa.perSourcePacketsPerSecond}/second burst ${spa.perSourcePacketsPerSecond * 2} packets`;
    const dport = `udp dport ${spa.port}`;
    divert.push(`meta nfproto ipv4 ${dport} ${local} update @${SPA_RATE_V4} { ip saddr ${perSource} } drop`);
    divert.push(
      `meta nfproto ipv6 ${dport} ${local} update @${SPA_RATE_V6} { ip6 saddr & ${mask} ${perSource} } drop`,
    );
    divert.push(
      `${dport} ${local} limit rate over ${spa.packetsPerSecond}/second burst ${spa.packetsPerSecond} packets drop`,
    );
  }
  if (udpSteps.length > 0) {
    divert.push(`meta nfproto ipv4 udp dport ${udpPorts} ${local} ip protocol set ${divUdp} notrack`);
    divert.push(`ip6 nexthdr udp udp dport ${udpPorts} ${local} ip6 nexthdr set ${divUdp} notrack`);
  }

  const input = [
    'iif lo accept',
    'ct state established,related accept',
    'ct state invalid drop',
    `meta l4proto { ${divTcp}, ${divUdp} } accept`,
    ...(config.publicTcpPorts.length > 0 ? [`tcp dport ${publicPorts} accept`] : []),
    `tcp dport ${config.sshPort} ip saddr @${SET_V4} accept`,
    `tcp dport ${config.sshPort} ip6 saddr @${SET_V6} accept`,
    // IPv6 stops working without neighbour discovery; hop limit 255 proves it is on-link.
    'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } ip6 hoplimit 255 accept',
    ...(config.icmpEcho
      ? [
          'icmp type echo-request limit rate 20/second accept',
          'icmpv6 type echo-request limit rate 20/second accept',
        ]
      : []),
  ];

  const output = [
    'oif lo accept',
    // Nothing accepted on input can elicit these except a diverted knock while the daemon is
    // down (protocol unreachable / unknown next header): never tell a scanner anything.
    'icmp type destination-unreachable drop',
    'icmpv6 type { destination-unreachable, parameter-problem } drop',
    ...(hasTcp ? [`tcp sport ${tcpPorts} tcp flags & rst == rst drop`] : []),
  ];

  const chain = (name: string, hook: string, priority: string, policy: string, rules: string[]) =>
    `  chain ${name} {\n    type filter hook ${hook} priority ${priority}; policy ${policy};\n` +
    rules.map((rule) => `    ${rule}\n`).join('') +
    '  }\n';

  return (
    `table inet ${TABLE}\ndelete table inet ${TABLE}\n` +
    `table inet ${TABLE} {\n` +
    `  set ${SET_V4} {\n    type ipv4_addr; flags timeout; size 65535;\n  }\n` +
    `  set ${SET_V6} {\n    type ipv6_addr; flags timeout; size 65535;\n  }\n` +
    (spa === undefined
      ? ''
      : `  set ${SPA_RATE_V4} {\n    type ipv4_addr; flags dynamic, timeout; size 65535; timeout 10s;\n  }\n` +
        `  set ${SPA_RATE_V6} {\n    type ipv6_addr; flags dynamic, timeout; size 65535; timeout 10s;\n  }\n`) +
    chain('divert', 'prerouting', 'raw', 'accept', divert) +
    chain('input', 'input', 'filter', 'drop', input) +
    chain('output', 'output', 'filter', 'accept', output) +
    '}\n'
  );
}

/** Opens (or re-opens, with a fresh timeout) the window for one address. */
export function renderOpenWindow(address: string, seconds: number): string {
  const set = address.includes(':') ? SET_V6 : SET_V4;
  const el = `inet ${TABLE} ${set} { ${address} }`;
  // add-delete-add: one transaction that works whether or not the element exists already.
  return `add element ${el}\ndelete element ${el}\nadd element inet ${TABLE} ${set} { ${address} timeout ${seconds}s }\n`;
}

export function renderDeleteTable(): string {
  return `delete table inet ${TABLE}\n`;
}
