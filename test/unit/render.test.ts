// `nonstop render`: input documents are validated with errors that name the field, the role
// decides which fields belong, and the renderers refuse what would loosen a host.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderArtefact } from '../../cli/render.js';
import { renderCoreRuleset, type CoreFirewallOptions } from '../../core/firewall.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9V0n0x0Q0m2Ck0exampleexampleexampleexam';
const gateway = {
  role: 'gateway',
  port: 22,
  hostKeys: ['/etc/ssh/ssh_host_ed25519_key'],
  allowGroups: ['nonstop-ssh', 'nonstop-tunnel'],
  tunnelUser: 'nonstop-tunnel',
  tunnelAuthorizedKeysFile: '/etc/ssh/authorized_keys/%u',
  brokers: [{ id: 'broker1', publicKey: KEY, port: 6380 }],
};
const core = { role: 'core', addresses: ['10.0.0.30'], brokers: ['10.0.0.20'] };

const refuses = (artefact: string, doc: unknown, message: RegExp) =>
  assert.throws(() => renderArtefact(artefact, 'in.json', doc), message);

describe('nonstop render: input', () => {
  test('unknown fields, missing fields and wrong types name the field', () => {
    refuses(
      'sshd',
      { ...gateway, permitRootLogin: 'yes' },
      /in\.json: field "permitRootLogin" is not a known field/,
    );
    refuses('sshd', { ...gateway, allowGroups: [] }, /field "allowGroups"/);
    refuses('sshd', { ...gateway, port: 0 }, /field "port"/);
    refuses('sshd', { role: 'gateway', port: 22, hostKeys: ['/k'] }, /field "allowGroups" is required/);
    refuses('nftables', { ...core, listenPort: '9443' }, /field "listenPort"/);
    refuses('nftables', { ...core, brokers: [] }, /field "brokers"/);
    refuses('nftables', { ...core, role: 'broker' }, /field "role" must be "core"/);
    refuses(
      'nftables',
      { ...core, egress: [{ protocol: 'tcp', ports: [443], to: [] }] },
      /field "egress\[0\]\.to"/,
    );
    refuses('frobnicate', gateway, /unknown artefact "frobnicate"/);
  });

  test('the role decides which fields belong', () => {
    const { tunnelUser: _t, ...noTunnel } = gateway;
    refuses('sshd', noTunnel, /field "tunnelUser" is required for role "gateway"/);
    refuses('sshd', { ...gateway, role: 'core' }, /field "tunnelUser" is for role "gateway" only/);
    refuses(
      'sshd',
      { ...gateway, jumpTargets: ['10.0.0.30:22'] },
      /field "jumpTargets" is for role "broker" only/,
    );
    const { tunnelUser: _u, tunnelAuthorizedKeysFile: _f, brokers: _b, ...base } = gateway;
    refuses(
      'sshd',
      { ...base, role: 'core', jumpTargets: ['10.0.0.30:22'] },
      /"jumpTargets" is for role "broker"/,
    );
    refuses('tunnel-authorized-keys', { ...base, role: 'broker' }, /must be "gateway"/);
    refuses('sshd', { ...base, role: 'broker', jumpTargets: ['10.0.0.30:22 *:*'] }, /jump target/);
    refuses('sshd', { ...base, role: 'core', listenAddresses: ['10.0.0.30 0.0.0.0'] }, /listenAddresses/);
  });

  test('sshd: one file per role, the tunnel block on gateways only, the jump on brokers only', () => {
    const g = renderArtefact('sshd', 'in.json', gateway);
    assert.match(g, /^Match User nonstop-tunnel$/m);
    assert.match(g, /^ {2}MaxSessions 0$/m);
    assert.match(g, /^AllowGroups nonstop-ssh nonstop-tunnel$/m);
    assert.doesNotMatch(g, /^Include/m, 'no drop-in may loosen the rendered file');
    const { tunnelUser: _u, tunnelAuthorizedKeysFile: _f, brokers: _b, ...base } = gateway;
    const b = renderArtefact('sshd', 'in.json', {
      ...base,
      role: 'broker',
      allowGroups: ['nonstop-ssh'],
      jumpTargets: ['10.0.0.30:22'],
    });
    assert.doesNotMatch(b, /Match User/);
    assert.match(
      b,
      /^Match Group nonstop-ssh\n {2}AllowTcpForwarding local\n {2}PermitOpen 10\.0\.0\.30:22$/m,
    );
    const c = renderArtefact('sshd', 'in.json', { ...base, role: 'core', listenAddresses: ['10.0.0.30'] });
    assert.match(c, /^ListenAddress 10\.0\.0\.30$/m);
    assert.doesNotMatch(c, /Match/);
    // Everything but the role's own lines is the same text on every role.
    const strip = (s: string) =>
      s.split('\n').filter((l) => !/^(# nonstop|ListenAddress|AllowGroups|Match| {2})/.test(l) && l !== '');
    const gBase = strip(g);
    assert.deepEqual(strip(b), gBase);
    assert.deepEqual(strip(c), gBase);
    assert.equal(
      renderArtefact('tunnel-authorized-keys', 'in.json', gateway),
      `restrict,port-forwarding,permitlisten="127.0.0.1:6380" ${KEY} broker-broker1\n`,
    );
  });

  test('during a rotation a broker has its previous key too, with the same one forward', () => {
    const NEW = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIrotatedrotatedrotatedrotatedrotatedrotat';
    const rotating = {
      ...gateway,
      brokers: [{ id: 'broker1', publicKey: NEW, previousPublicKey: `${KEY} old`, port: 6380 }],
    };
    assert.equal(
      renderArtefact('tunnel-authorized-keys', 'in.json', rotating),
      `restrict,port-forwarding,permitlisten="127.0.0.1:6380" ${NEW} broker-broker1\n` +
        `restrict,port-forwarding,permitlisten="127.0.0.1:6380" ${KEY} broker-broker1-previous\n`,
    );
    refuses(
      'tunnel-authorized-keys',
      {
        ...gateway,
        brokers: [{ id: 'broker1', publicKey: KEY, previousPublicKey: `${KEY} same`, port: 6380 }],
      },
      /previous public key is its public key/,
    );
    refuses(
      'tunnel-authorized-keys',
      {
        ...gateway,
        brokers: [
          { id: 'broker1', publicKey: NEW, previousPublicKey: 'ssh-ed25519 not/base64!', port: 6380 },
        ],
      },
      /previous public key is not/,
    );
  });

  test('an RSA broker key is refused: the profile accepts Ed25519 only', () => {
    const rsa = { id: 'b', publicKey: 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ', port: 1 };
    refuses('tunnel-authorized-keys', { ...gateway, brokers: [rsa] }, /key type ssh-rsa is not accepted/);
  });
});

describe('core firewall ruleset', () => {
  const options: CoreFirewallOptions = {
    addresses: ['10.0.0.30', 'fd00::30'],
    brokers: ['10.0.0.20', 'fd00::20'],
    listenPort: 9443,
    sshPort: 22,
    icmpEcho: true,
    egress: [{ protocol: 'udp', ports: [123] }],
  };
  const chain = (ruleset: string, name: string) =>
    new RegExp(`chain ${name} \\{\\n([\\s\\S]*?)\\n  \\}`).exec(ruleset)?.[1] ?? '';

  test('input, forward and output drop by policy; in: only brokers to the private address', () => {
    const r = renderCoreRuleset(options);
    assert.match(r, /^table inet nonstop_host \{$/m);
    assert.doesNotMatch(r, /flush ruleset/);
    for (const name of ['input', 'forward', 'output'])
      assert.match(chain(r, name), /policy drop;/, `${name} policy drop`);
    const accepts = chain(r, 'input')
      .split('\n')
      .filter((l) => /tcp dport/.test(l));
    assert.deepEqual(
      accepts.map((l) => l.trim()),
      [
        'tcp dport 9443 ip saddr { 10.0.0.20 } ip daddr { 10.0.0.30 } accept',
        'tcp dport 9443 ip6 saddr { fd00::20 } ip6 daddr { fd00::30 } accept',
        'tcp dport 22 ip saddr { 10.0.0.20 } ip daddr { 10.0.0.30 } accept',
        'tcp dport 22 ip6 saddr { fd00::20 } ip6 daddr { fd00::30 } accept',
      ],
    );
    assert.match(chain(r, 'output'), /^\s+udp dport \{ 123 \} accept$/m);
  });

  test('a family without a core address opens nothing for it', () => {
    const r = renderCoreRuleset({ ...options, addresses: ['10.0.0.30'] });
    assert.doesNotMatch(chain(r, 'input'), /ip6 saddr \{ fd00::20 \} ip6 daddr/);
    assert.doesNotMatch(chain(r, 'input'), /tcp dport \S+ accept$/m, 'no port accepted from anywhere');
  });

  test('bad addresses, prefixes as own addresses and empty lists are refused', () => {
    assert.throws(() => renderCoreRuleset({ ...options, brokers: ['10.0.0.300'] }), /not an IP address/);
    assert.throws(() => renderCoreRuleset({ ...options, brokers: ['10.0.0.0/33'] }), /not an IP address/);
    assert.throws(() => renderCoreRuleset({ ...options, addresses: ['10.0.0.0/24'] }), /not prefixes/);
    assert.throws(() => renderCoreRuleset({ ...options, brokers: [] }), /brokers/);
    assert.throws(() => renderCoreRuleset({ ...options, sshPort: 9443 }), /must differ/);
  });
});
