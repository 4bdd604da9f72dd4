// The broker's tunnels against a real sshd on loopback: up, carrying Redis traffic from the
// gateway's port; a wrong pinned host key refused with both fingerprints in the log; back by
// themselves after the gateway's sshd dies and returns; the status endpoint follows along.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { startBroker } from '../../broker/broker.js';
import type { Knocker } from '../../broker/knocker.js';
import { startStatusServer } from '../../broker/status-server.js';
import type { TunnelState, TunnelStatus } from '../../broker/tunnel.js';
import { validateConfig } from '../../config/load.js';
import { loadRoutes } from '../../config/routes.js';
import type { BrokerConfig } from '../../config/schemas/broker.js';
import { brokerConfigDoc } from '../helpers/broker.js';
import { tempDir } from '../helpers/files.js';
import { captureLogger } from '../helpers/log.js';
import { usePki } from '../helpers/pki.js';
import { testRedis } from '../helpers/redis.js';
import { freePort } from '../helpers/redis-server.js';
import { sshKeygen, startTestSshd } from '../helpers/sshd.js';

const TUNNELS = { backoffInitialMs: 100, backoffMaxMs: 1000, keepaliveIntervalMs: 1000, drainMs: 0 };

describe('broker tunnels', () => {
  const pki = usePki({ brokers: ['b1'] });

  async function world(t: TestContext, options: { wrongFingerprint?: boolean; knocker?: Knocker } = {}) {
    const redis = testRedis(t);
    const dir = tempDir(t);
    const key = await sshKeygen(dir, 'b1');
    const ports = { gw1: await freePort(), gw2: await freePort() };
    const sshd = await startTestSshd(t, {
      brokers: [{ id: 'b1', port: ports.gw1 }],
      keys: { b1: key },
    });
    // gw2 is the same sshd under a second name; only its fingerprint can be wrong.
    const other = await sshKeygen(dir, 'not-the-host-key');
    const ssh = (remotePort: number, fingerprint: string) => ({
      host: '127.0.0.1',
      port: sshd.port,
      user: sshd.user,
      hostKeyFingerprint: fingerprint,
      privateKey: key.privateKeyFile,
      remotePort,
    });
    const gateways = [{ id: 'gw1', ssh: ssh(ports.gw1, sshd.hostKey.fingerprint) }];
    if (options.wrongFingerprint) gateways.push({ id: 'gw2', ssh: ssh(ports.gw2, other.fingerprint) });
    const doc = brokerConfigDoc(pki(), {
      prefix: redis.prefix,
      corePort: 1,
      gateways: [],
      extra: { gateways, tunnels: TUNNELS, status: { port: 0 } },
    });
    const config: BrokerConfig = validateConfig('broker', 'test-broker.json', doc);
    const log = captureLogger('info');
    const started = Date.now();
    const broker = startBroker(config, loadRoutes(config.routes), log.logger, { knocker: options.knocker });
    t.after(() => broker.close());
    const status = await startStatusServer(
      config.status!,
      { brokerId: config.id, snapshot: () => Promise.resolve(broker.snapshot()) },
      log.logger,
    );
    t.after(() => status.close());
    const base = `http://127.0.0.1:${status.address.port}`;
    const statusOf = async (id: string): Promise<TunnelStatus> => {
      const doc = (await (await fetch(`${base}/status`)).json()) as { tunnels: TunnelStatus[] };
      const found = doc.tunnels.find((x) => x.gatewayId === id);
      if (found === undefined) throw new Error(`no tunnel ${id} in /status`);
      return found;
    };
    const until = async (id: string, state: TunnelState, timeoutMs = 10_000): Promise<TunnelStatus> => {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const s = await statusOf(id);
        if (s.state === state) return s;
        if (Date.now() > end)
          throw new Error(`tunnel ${id} not ${state} within ${timeoutMs} ms: ${JSON.stringify(s)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    return { redis, sshd, ports, broker, base, log, started, statusOf, until };
  }

  /** A Redis client on the gateway's side of the tunnel. */
  function throughTunnel(t: TestContext, port: number): Redis {
    const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, retryStrategy: () => null });
    client.on('error', () => {});
    t.after(() => client.disconnect());
    return client;
  }

  test("the tunnel comes up and carries Redis commands from the gateway's port to the broker's Redis", async (t) => {
    const w = await world(t);
    const up = await w.until('gw1', 'up');
    t.diagnostic(`tunnel up ${Date.now() - w.started} ms after the broker started`);
    assert.equal(up.lastError, null);
    const gatewaySide = throughTunnel(t, w.ports.gw1);
    await gatewaySide.set(`${w.redis.prefix}:gw-gw1:probe`, 'through the tunnel');
    assert.equal(await w.redis.client.get(`${w.redis.prefix}:gw-gw1:probe`), 'through the tunnel');
    assert.ok((await w.statusOf('gw1')).forwarded >= 1);

    const metrics = await (await fetch(`${w.base}/metrics`)).text();
    assert.match(metrics, /^nonstop_broker_tunnel_state\{gateway="gw1",state="up"\} 1$/m);
    assert.match(metrics, /^nonstop_broker_tunnel_state\{gateway="gw1",state="backing-off"\} 0$/m);
    assert.match(metrics, /^nonstop_broker_tunnel_reconnects_total\{gateway="gw1"\} 0$/m);
    assert.match(metrics, /^# TYPE nonstop_broker_jobs_total counter$/m);
    assert.match(metrics, /^nonstop_broker_jobs_total\{gateway="gw1",outcome="answered"\} 0$/m);
  });

  test('a wrong pinned host key is refused, loudly, while the other gateway comes up', async (t) => {
    const w = await world(t, { wrongFingerprint: true });
    await w.until('gw1', 'up');
    // Give gw2 a few attempts.
    await new Promise((r) => setTimeout(r, 800));
    const gw2 = await w.statusOf('gw2');
    assert.notEqual(gw2.state, 'up');
    assert.ok(gw2.reconnects >= 1, `gw2 keeps retrying (${gw2.reconnects})`);
    assert.match(gw2.lastError ?? '', /does not match the pinned SHA256:/);
    assert.ok(gw2.lastError?.includes(w.sshd.hostKey.fingerprint), 'the message names the key it got');
    const refusal = w.log
      .lines()
      .find((l) => l.gatewayId === 'gw2' && String(l.msg).includes('does not match the pinned fingerprint'));
    assert.ok(refusal, 'logged');
    assert.equal(refusal.level, 50, 'at error level');
    assert.equal(refusal.got, w.sshd.hostKey.fingerprint);
    assert.notEqual(refusal.expected, refusal.got);
    // Nothing listens on gw2's port: the forward was never asked for.
    await assert.rejects(throughTunnel(t, w.ports.gw2).ping());
  });

  test("the tunnel comes back by itself after the gateway's sshd dies and returns, knocking first", async (t) => {
    const knocks: string[] = [];
    const w = await world(t, { knocker: { knock: (host) => (knocks.push(host), Promise.resolve(host)) } });
    await w.until('gw1', 'up');
    assert.deepEqual(knocks, ['127.0.0.1'], 'one knock before the first connection');
    await w.sshd.kill();
    const down = Date.now();
    const lost = await w.until('gw1', 'backing-off', 5000);
    t.diagnostic(`drop noticed after ${Date.now() - down} ms`);
    assert.ok(lost.lastError !== null);
    await assert.rejects(throughTunnel(t, w.ports.gw1).ping(), 'no listener while sshd is down');
    await new Promise((r) => setTimeout(r, 1500)); // a few failed attempts while it is down
    const during = await w.statusOf('gw1');
    assert.notEqual(during.state, 'up');
    assert.ok(during.reconnects >= 2, `reconnects while down: ${during.reconnects}`);

    const restarted = Date.now();
    await w.sshd.start();
    const back = await w.until('gw1', 'up', 10_000);
    t.diagnostic(`tunnel up again ${Date.now() - restarted} ms after sshd restarted`);
    assert.equal(back.lastError, null);
    assert.equal(knocks.length, back.reconnects + 1, 'a knock before every connection attempt');
    const gatewaySide = throughTunnel(t, w.ports.gw1);
    assert.equal(await gatewaySide.ping(), 'PONG');
    const metrics = await (await fetch(`${w.base}/metrics`)).text();
    assert.match(
      metrics,
      new RegExp(`^nonstop_broker_tunnel_reconnects_total\\{gateway="gw1"\\} ${back.reconnects}$`, 'm'),
    );
  });

  test('a knock that fails is retried like any other failure, and no connection is made', async (t) => {
    let attempts = 0;
    const w = await world(t, {
      knocker: {
        knock: (host) =>
          ++attempts < 3 ? Promise.reject(new Error('knock port unreachable')) : Promise.resolve(host),
      },
    });
    const up = await w.until('gw1', 'up');
    assert.equal(attempts, 3);
    assert.equal(up.reconnects, 2);
    const warned = w.log.lines().filter((l) => l.err === 'knock port unreachable');
    assert.equal(warned.length, 2);
  });

  test("values far past ssh2's 2 MiB window go both ways through OpenSSH; no channel counts as a breach", async (t) => {
    const w = await world(t);
    await w.until('gw1', 'up');
    const key = (i: number) => `${w.redis.prefix}:gw-gw1:big-${i}`;
    // Three connections at once, each 8 MiB up and 8 MiB down: windows adjusted many times.
    const value = randomBytes(6 * 1024 * 1024).toString('base64');
    await Promise.all(
      [0, 1, 2].map(async (i) => {
        const gatewaySide = throughTunnel(t, w.ports.gw1);
        await gatewaySide.set(key(i), value);
        assert.equal(await gatewaySide.get(key(i)), value);
      }),
    );
    const s = await w.statusOf('gw1');
    assert.equal(s.refused, 0);
    assert.equal(s.state, 'up');
    assert.equal(s.reconnects, 0);
  });

  test('closing the broker closes its tunnels: the gateway port stops listening', async (t) => {
    const w = await world(t);
    await w.until('gw1', 'up');
    assert.equal(await throughTunnel(t, w.ports.gw1).ping(), 'PONG');
    await w.broker.close();
    assert.deepEqual(
      w.broker.tunnels.status().map((s) => s.state),
      ['closed'],
    );
    const end = Date.now() + 3000;
    let listening = true;
    while (listening && Date.now() < end) {
      listening = await throughTunnel(t, w.ports.gw1)
        .ping()
        .then(() => true)
        .catch(() => false);
      if (listening) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(listening, false);
  });
});
