// The core host's nftables table (`inet nonstop_host`), rendered for Ansible by `nonstop render
// nftables`. Input policy drop: the core's listener and its SSH, each only on the core's private
// addresses and only from the brokers' private addresses. Output policy drop as well: the core
// holds all state and talks to nothing but its brokers' connections (established), plus the
// egress rules an operator lists (DNS and NTP by default in Ansible, nothing else).
// One `inet` table for IPv4 and IPv6: whatever is closed over one is closed over the other.
import { isIP } from 'node:net';
import { errors } from '../lib/errors.js';

export const HOST_TABLE = 'nonstop_host';

export interface EgressRule {
  readonly protocol: 'tcp' | 'udp';
  readonly ports: readonly number[];
  /** Destination addresses or prefixes; absent: any destination (never an empty list). */
  readonly to?: readonly string[];
}

export interface CoreFirewallOptions {
  /** The core's private addresses: its listener and sshd bind these. */
  readonly addresses: readonly string[];
  /** The brokers' private addresses (or prefixes): the only sources let in. */
  readonly brokers: readonly string[];
  readonly listenPort: number;
  readonly sshPort: number;
  readonly egress: readonly EgressRule[];
  /** Echo requests from brokers (rate-limited). */
  readonly icmpEcho: boolean;
}

function assertPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw errors.CONFIG_INVALID(`${what} must be a port number (got ${port})`);
}

/** An address or a prefix (`10.0.0.0/24`, `fd00::/64`); returns its family. */
function family(value: string, what: string): 4 | 6 {
  const [addr = '', len, extra] = value.split('/');
  const v = isIP(addr);
  const max = v === 6 ? 128 : 32;
  if (
    v === 0 ||
    extra !== undefined ||
    (len !== undefined && (!/^[0-9]{1,3}$/.test(len) || Number(len) > max))
  )
    throw errors.CONFIG_INVALID(`${what}: "${value}" is not an IP address or prefix`);
  return v === 6 ? 6 : 4;
}

function byFamily(values: readonly string[], what: string): { v4: string[]; v6: string[] } {
  const out = { v4: [] as string[], v6: [] as string[] };
  for (const v of values) (family(v, what) === 4 ? out.v4 : out.v6).push(v);
  return out;
}

const set = (items: readonly (string | number)[]) => `{ ${items.join(', ')} }`;

/** `tcp dport 9443 ip saddr {…} ip daddr {…} accept`, for each family that has both. */
function fromTo(
  match: string,
  sources: ReturnType<typeof byFamily>,
  dests: ReturnType<typeof byFamily>,
): string[] {
  const rules: string[] = [];
  if (sources.v4.length > 0 && dests.v4.length > 0)
    rules.push(`${match} ip saddr ${set(sources.v4)} ip daddr ${set(dests.v4)} accept`);
  if (sources.v6.length > 0 && dests.v6.length > 0)
    rules.push(`${match} ip6 saddr ${set(sources.v6)} ip6 daddr ${set(dests.v6)} accept`);
  return rules;
}

function egressRules(rules: readonly EgressRule[]): string[] {
  return rules.flatMap((r, i) => {
    if (r.protocol !== 'tcp' && r.protocol !== 'udp')
      throw errors.CONFIG_INVALID(`egress[${i}].protocol must be tcp or udp`);
    if (r.ports.length === 0) throw errors.CONFIG_INVALID(`egress[${i}].ports must list a port`);
    r.ports.forEach((p) => assertPort(p, `egress[${i}].ports`));
    const match = `${r.protocol} dport ${set([...new Set(r.ports)].sort((a, b) => a - b))}`;
    if (r.to === undefined) return [`${match} accept`];
    if (r.to.length === 0)
      throw errors.CONFIG_INVALID(`egress[${i}].to: leave it out for any destination, never empty`);
    const to = byFamily(r.to, `egress[${i}].to`);
    return [
      ...(to.v4.length > 0 ? [`ip daddr ${set(to.v4)} ${match} accept`] : []),
      ...(to.v6.length > 0 ? [`ip6 daddr ${set(to.v6)} ${match} accept`] : []),
    ];
  });
}

export function renderCoreRuleset(o: CoreFirewallOptions): string {
  assertPort(o.listenPort, 'listenPort');
  assertPort(o.sshPort, 'sshPort');
  if (o.listenPort === o.sshPort) throw errors.CONFIG_INVALID('listenPort and sshPort must differ');
  if (o.addresses.length === 0) throw errors.CONFIG_INVALID('addresses: the core needs a private address');
  if (o.brokers.length === 0) throw errors.CONFIG_INVALID("brokers: list the brokers' private addresses");
  const own = byFamily(o.addresses, 'addresses');
  const brokers = byFamily(o.brokers, 'brokers');
  if (own.v4.some((a) => a.includes('/')) || own.v6.some((a) => a.includes('/')))
    throw errors.CONFIG_INVALID("addresses: the core's own addresses, not prefixes");
  const brokerSources = (v: 4 | 6) => (v === 4 ? brokers.v4 : brokers.v6);

  const input = [
    'iif lo accept',
    'ct state established,related accept',
    'ct state invalid drop',
    ...fromTo(`tcp dport ${o.listenPort}`, brokers, own),
    ...fromTo(`tcp dport ${o.sshPort}`, brokers, own),
    // IPv6 stops working without neighbour discovery; hop limit 255 proves it is on-link.
    'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } ip6 hoplimit 255 accept',
    ...(o.icmpEcho
      ? [
          ...(brokerSources(4).length > 0
            ? [`icmp type echo-request ip saddr ${set(brokers.v4)} limit rate 20/second accept`]
            : []),
          ...(brokerSources(6).length > 0
            ? [`icmpv6 type echo-request ip6 saddr ${set(brokers.v6)} limit rate 20/second accept`]
            : []),
        ]
      : []),
  ];

  const output = [
    'oif lo accept',
    // Replies on the brokers' connections, and ICMP errors about them (path MTU).
    'ct state established,related accept',
    // Replies from the core's own listeners to the brokers even where conntrack has not seen the
    // connection begin: the SSH session that loads this table is one of them.
    ...fromTo(`tcp sport ${o.listenPort}`, own, brokers),
    ...fromTo(`tcp sport ${o.sshPort}`, own, brokers),
    'ct state invalid drop',
    // Neighbour discovery and the multicast listener reports it relies on.
    'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, mld2-listener-report } accept',
    ...egressRules(o.egress),
  ];

  const chain = (name: string, hook: string, rules: string[]) =>
    `  chain ${name} {\n    type filter hook ${hook} priority filter; policy drop;\n` +
    rules.map((rule) => `    ${rule}\n`).join('') +
    '  }\n';

  return (
    `table inet ${HOST_TABLE}\ndelete table inet ${HOST_TABLE}\n` +
    `table inet ${HOST_TABLE} {\n` +
    chain('input', 'input', input) +
    // A core routes nothing.
    chain('forward', 'forward', []) +
    chain('output', 'output', output) +
    '}\n'
  );
}
