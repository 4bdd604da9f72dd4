// The broker config's tunnel parts: optional (old configs still load), validated strictly,
// key paths resolved against the config file's folder, the status endpoint loopback only.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../../config/load.js';
import { sshFingerprint } from '../../broker/tunnel.js';

const base = {
  kind: 'broker',
  id: 'b1',
  routes: 'routes.json',
  gateways: [{ id: 'gw1' }],
  core: { url: 'https://core:9443', ca: 'ca.crt', cert: 'b.crt', key: 'b.key' },
};
const FP = 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s';
const ssh = { host: 'gw1.example', hostKeyFingerprint: FP, privateKey: 'keys/b1', remotePort: 7001 };

test('a config without ssh or status still loads, with tunnel defaults', () => {
  const config = validateConfig('broker', '/etc/nonstop/broker.json', base);
  assert.equal(config.gateways[0]!.ssh, undefined);
  assert.equal(config.status, undefined);
  assert.deepEqual(config.tunnels, {
    connectTimeoutMs: 10000,
    keepaliveIntervalMs: 5000,
    keepaliveCountMax: 3,
    backoffInitialMs: 500,
    backoffMaxMs: 30000,
    drainMs: 1000,
    maxChannels: 32,
    channelOpensPerSecond: 50,
    channelOpenBurst: 100,
    messagesPerSecond: 20000,
    messageBurst: 40000,
  });
});

test('an ssh section gets defaults and its key path resolved against the config folder', () => {
  const config = validateConfig('broker', '/etc/nonstop/broker.json', {
    ...base,
    gateways: [{ id: 'gw1', ssh }, { id: 'gw2' }],
    status: { port: 9100 },
  });
  assert.deepEqual(config.gateways[0]!.ssh, {
    ...ssh,
    port: 22,
    user: 'nonstop-tunnel',
    privateKey: '/etc/nonstop/keys/b1',
  });
  assert.deepEqual(config.status, { host: '127.0.0.1', port: 9100 });
});

test('bad ssh sections and non-loopback status hosts are refused at start, naming the field', () => {
  const bad: [string, Record<string, unknown>, RegExp][] = [
    [
      'fingerprint',
      { gateways: [{ id: 'gw1', ssh: { ...ssh, hostKeyFingerprint: 'MD5:aa:bb' } }] },
      /hostKeyFingerprint/,
    ],
    ['no remote port', { gateways: [{ id: 'gw1', ssh: { ...ssh, remotePort: undefined } }] }, /remotePort/],
    ['status on all addresses', { status: { host: '0.0.0.0', port: 9100 } }, /status\/host|host/],
    ['status on a public address', { status: { host: '198.18.0.5', port: 9100 } }, /host/],
    ['status on 127.0.0.1.evil', { status: { host: '127.0.0.1.example', port: 9100 } }, /host/],
  ];
  for (const [what, patch, field] of bad) {
    assert.throws(
      () => validateConfig('broker', 'b.json', JSON.parse(JSON.stringify({ ...base, ...patch }))),
      field,
      what,
    );
  }
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) {
    validateConfig('broker', 'b.json', { ...base, status: { host, port: 0 } });
  }
});

test('sshFingerprint prints like ssh-keygen -l: SHA256 and unpadded base64', () => {
  const fp = sshFingerprint(Buffer.from('key blob'));
  assert.match(fp, /^SHA256:[A-Za-z0-9+/]{43}$/);
});
