import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseGuardConfig } from '../../config/knock.js';
import { SequenceCatalog } from '../../knock/catalog.js';
import { renderOpenWindow, renderRuleset } from '../../knock/ruleset.js';

const secret = 'A'.repeat(43);

function render(doc: object): string {
  const config = parseGuardConfig('guard.json', { kind: 'guard', gateway: 'gw1', ...doc });
  return renderRuleset(config, new SequenceCatalog(config).knockPorts());
}

test('the table is replaced atomically and drops by default', () => {
  const rules = render({});
  assert.match(rules, /^table inet nonstop\ndelete table inet nonstop\ntable inet nonstop \{/);
  assert.match(rules, /hook input priority filter; policy drop;/);
  assert.match(rules, /ct state established,related accept/);
  assert.match(rules, /tcp dport \{ 80, 443 \} accept/);
  assert.match(rules, /tcp dport 22 ip saddr @ssh_open4 accept/);
  assert.match(rules, /tcp dport 22 ip6 saddr @ssh_open6 accept/);
  assert.match(rules, /set ssh_open4 \{\n\s+type ipv4_addr; flags timeout;/);
  assert.match(rules, /nd-neighbor-solicit/);
  assert.doesNotMatch(rules, /protocol set/, 'no knock ports, nothing diverted');
});

test('knock ports are diverted before conntrack, TCP SYNs only, v4 and v6', () => {
  const rules = render({
    sshPort: 2222,
    static: [{ name: 'ops', sequence: ['7000', '8000:udp', '9000:tcp'] }],
    rotating: { portMin: 30000, portMax: 30999, clients: [{ name: 'alice', secret }] },
  });
  assert.match(rules, /hook prerouting priority raw;/);
  assert.match(rules, /meta l4proto \{ 253, 254 \} drop\n/);
  assert.match(
    rules,
    /meta nfproto ipv4 tcp dport \{ 7000, 9000, 30000-30999 \} tcp flags & \(fin \| syn \| rst \| ack\) == syn fib daddr type local ip protocol set 253 notrack/,
  );
  assert.match(
    rules,
    /ip6 nexthdr tcp tcp dport \{ 7000, 9000, 30000-30999 \} .* ip6 nexthdr set 253 notrack/,
  );
  assert.match(rules, /udp dport \{ 8000 \} fib daddr type local ip protocol set 254 notrack/);
  assert.match(rules, /meta l4proto \{ 253, 254 \} accept/);
  assert.match(rules, /tcp dport 2222 ip saddr @ssh_open4 accept/);
  assert.match(rules, /tcp sport \{ 7000, 9000, 30000-30999 \} tcp flags & rst == rst drop/);
  assert.match(rules, /icmp type destination-unreachable drop/);
});

test('icmp echo can be turned off', () => {
  assert.match(render({}), /icmp type echo-request/);
  assert.doesNotMatch(render({ icmpEcho: false }), /echo-request/);
});

test('opening a window re-adds the element with a fresh timeout, v4 or v6', () => {
  assert.equal(
    renderOpenWindow('198.18.0.10', 30),
    'add element inet nonstop ssh_open4 { 198.18.0.10 }\n' +
      'delete element inet nonstop ssh_open4 { 198.18.0.10 }\n' +
      'add element inet nonstop ssh_open4 { 198.18.0.10 timeout 30s }\n',
  );
  assert.match(renderOpenWindow('2001:2:0:1::a', 5), /ssh_open6 \{ 2001:2:0:1::a timeout 5s \}/);
});

test('a broker guard (publicTcpPorts []) accepts no port but SSH for knocked sources', () => {
  const rules = render({ publicTcpPorts: [], static: [{ name: 'ops', sequence: ['7101', '8101:udp'] }] });
  const input = /chain input \{\n([\s\S]*?)\n {2}\}/.exec(rules)?.[1] ?? '';
  assert.match(input, /policy drop;/);
  const ports = input
    .split('\n')
    .filter((l) => /dport/.test(l))
    .map((l) => l.trim());
  assert.deepEqual(ports, [
    'tcp dport 22 ip saddr @ssh_open4 accept',
    'tcp dport 22 ip6 saddr @ssh_open6 accept',
  ]);
  assert.doesNotMatch(rules, /\b(80|443)\b/);
});

test('an SPA port is diverted like a UDP knock port, after per-source and shared rate limits', () => {
  const clients = [{ name: 'alice', key: 'A'.repeat(43) + '=', hmacKey: 'B'.repeat(86) + '==' }];
  const rules = render({
    ipv6PrefixLength: 56,
    static: [{ name: 'ops', sequence: ['7000', '8000:udp'] }],
    spa: { port: 62201, perSourcePacketsPerSecond: 10, packetsPerSecond: 1000, clients },
  });
  const divert =
    /chain divert \{\n([\s\S]*?)\n {2}\}/
      .exec(rules)?.[1]
      ?.split('\n')
      .map((l) => l.trim()) ?? [];
  const at = (pattern: RegExp) => divert.findIndex((l) => pattern.test(l));
  const perSource4 = at(
    /^meta nfproto ipv4 udp dport 62201 .*update @spa_rate4 \{ ip saddr limit rate over 10\/second burst 20 packets \} drop$/,
  );
  const perSource6 = at(/update @spa_rate6 \{ ip6 saddr & ffff:ffff:ffff:ff00:: limit rate over 10\/second/);
  const shared = at(
    /^udp dport 62201 fib daddr type local limit rate over 1000\/second burst 1000 packets drop$/,
  );
  const diverted = at(/udp dport \{ 8000, 62201 \} fib daddr type local ip protocol set 254 notrack/);
  assert.ok(perSource4 > 0 && perSource6 > 0 && shared > 0 && diverted > 0, divert.join('\n'));
  assert.ok(perSource4 < shared && perSource6 < shared && shared < diverted, 'limits before the divert');
  assert.match(
    rules,
    /set spa_rate4 \{\n\s+type ipv4_addr; flags dynamic, timeout; size 65535; timeout 10s;/,
  );
  assert.doesNotMatch(render({}), /spa_rate/, 'no SPA, no meters');
});
