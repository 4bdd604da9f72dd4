// The whole system in the test world: inet → two gateways (real `nonstop gateway` on 80, real
// sshd behind `nonstop guard`'s rotating knock) → two brokers (own Redis with the rendered
// ACL, tunnels out to both gateways, listening on nothing) → the core on the private segment.
// Requests round-trip through both gateways; nothing listens outside loopback on a broker; the
// core cannot be reached from the public side; a gateway's sshd restart and a broker's death
// are ridden out.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeAcl, gatewayUser, DEFAULT_WORKER_USER } from '../../broker/redis-acl.js';
import { renderSshdConfig, renderTunnelAuthorizedKeys } from '../../gateway/sshd-config.js';
import { newKnockSecret } from '../../knock/rotating.js';
import { generatePki } from '../../lib/pki.js';
import { EXAMPLE_ROUTES_FILE } from '../helpers/core.js';
import { descendants, sshKeygen, type SshKey } from '../helpers/sshd.js';
import { World, worldSkipReason, type Host, type HostProcess } from '../../world/world.js';
import { AGENT, CLI, eventually, startGuard } from './gateway.js';

const skip = worldSkipReason();
const ROTATION = { portMin: 20000, portMax: 29999, length: 4, stepSeconds: 30 };
const BROKERS = ['b1', 'b2'] as const;
const GATEWAYS = ['gw1', 'gw2'] as const;
const REMOTE_PORT: Record<string, number> = { b1: 16001, b2: 16002 };
const CORE_PORT = 8443;
const STATUS_PORT = 9100; // the broker's status endpoint, on its loopback
const PREFIX = 'nonstop';

// Runs inside `inet`: sequential requests, one JSON line per request on stdout.
// argv[1]: { mode: 'roundtrip' | 'stream', urls: string[], count?: number }
const CLIENT = `
const opts = JSON.parse(process.argv[1]);
async function req(method, url, body) {
  const started = Date.now();
  try {
    const res = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15000),
    });
    const text = await res.text();
    let json; try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, id: json && json.id, ms: Date.now() - started };
  } catch (err) {
    return { status: 0, error: String(err && err.message || err), ms: Date.now() - started };
  }
}
(async () => {
  if (opts.mode === 'roundtrip') {
    for (const url of opts.urls) {
      const created = await req('POST', url + '/notes', { title: 'x' });
      const got = created.status === 201 ? await req('GET', url + '/notes/' + created.id) : undefined;
      console.log(JSON.stringify({ url, created, got }));
    }
  } else {
    for (let i = 0; i < opts.count; i++) {
      const url = opts.urls[i % opts.urls.length];
      const r = await req('POST', url + '/notes', { title: 'n' + i });
      console.log(JSON.stringify({ i, url, at: Date.now(), ...r }));
    }
  }
})();
`;

interface Outcome {
  url: string;
  created: { status: number; id?: string };
  got?: { status: number; id?: string };
}

describe('three tiers in the test world', { skip }, () => {
  let world: World;
  let inet: Host;
  const gws: Record<string, { host: Host; dir: string; sshdConfig: string; sshd: HostProcess }> = {};
  const brokers: Record<string, { host: Host; process?: HostProcess; config: string }> = {};
  let core: Host;
  let brokersStarted = 0;

  const url = (gw: string) => `http://${gws[gw]!.host.ip4}`;

  async function roundtrip(gw: string): Promise<Outcome> {
    const r = await inet.exec(
      process.execPath,
      ['-e', CLIENT, JSON.stringify({ mode: 'roundtrip', urls: [url(gw)] })],
      {
        timeoutMs: 40000,
      },
    );
    return JSON.parse(r.stdout.trim()) as Outcome;
  }

  async function startSshd(gw: string): Promise<HostProcess> {
    const { host, sshdConfig } = gws[gw]!;
    const sshd = host.spawn('/usr/sbin/sshd', ['-D', '-e', '-f', sshdConfig]);
    await eventually(
      async () =>
        (await host.runNode(AGENT, ['probe', '127.0.0.1', '22', '--timeout', '300'])).stdout.trim() ===
        'open',
      5000,
    );
    return sshd;
  }

  before(async () => {
    world = await World.create();
    inet = await world.addHost('inet', { public: 1 });
    for (const id of GATEWAYS) {
      const dir = join(world.dir, id);
      mkdirSync(dir, { recursive: true });
      gws[id] = {
        host: await world.addHost(id, { public: 1 }),
        dir,
        sshdConfig: join(dir, 'sshd_config'),
      } as never;
    }
    for (const id of BROKERS)
      brokers[id] = { host: await world.addHost(`broker-${id}`, { public: 1, private: 1 }), config: '' };
    core = await world.addHost('core', { private: 1 });
    const coreIp = core.addresses.private.v4[0]!;

    const dir = world.dir;
    const pki = await generatePki({
      dir: join(dir, 'pki'),
      brokers: [...BROKERS],
      gateways: [...GATEWAYS],
      coreNames: ['core', coreIp],
    });
    // One ACL for both brokers' Redis (same users and passwords; each Redis is its own).
    const acl = writeAcl(join(dir, 'acl'), { prefix: PREFIX, gatewayIds: [...GATEWAYS] });
    const keys: Record<string, SshKey> = {};
    const secrets: Record<string, { secret: string; file: string }> = {};
    for (const b of BROKERS) {
      keys[b] = await sshKeygen(dir, `broker-${b}`);
      const secret = newKnockSecret();
      const file = join(dir, `knock-${b}.secret`);
      writeFileSync(file, `${secret}\n`, { mode: 0o600 });
      secrets[b] = { secret, file };
    }
    const tunnelBrokers = BROKERS.map((b) => ({
      id: b,
      publicKey: keys[b]!.publicKey,
      port: REMOTE_PORT[b]!,
    }));

    // The core, on its private address only.
    const coreConfig = join(dir, 'core.json');
    writeFileSync(
      coreConfig,
      JSON.stringify({
        kind: 'core',
        routes: EXAMPLE_ROUTES_FILE,
        listen: { host: coreIp, port: CORE_PORT },
        tls: { ca: pki.ca.cert, cert: pki.core.cert, key: pki.core.key },
        database: {},
      }),
    );
    const coreProcess = core.node(CLI, ['core', '--config', coreConfig]);
    const coreReady = coreProcess.waitForLine((l) => l.includes('core listening'), 30000);

    // Gateways: sshd (rendered config), guard (a rotating sequence per broker), nonstop gateway.
    const hostKeys: Record<string, SshKey> = {};
    for (const id of GATEWAYS) {
      const g = gws[id]!;
      hostKeys[id] = await sshKeygen(g.dir, 'host_ed25519');
      const authorizedKeys = join(g.dir, 'tunnel_authorized_keys');
      writeFileSync(authorizedKeys, renderTunnelAuthorizedKeys(tunnelBrokers), { mode: 0o600 });
      writeFileSync(
        g.sshdConfig,
        renderSshdConfig({
          port: 22,
          listenAddresses: ['0.0.0.0'],
          hostKeys: [hostKeys[id].privateKeyFile],
          pidFile: join(g.dir, 'sshd.pid'),
          tunnelUser: 'root',
          tunnelAuthorizedKeysFile: authorizedKeys,
          authorizedKeysFile: 'none',
          brokers: tunnelBrokers,
          permitRootLogin: 'prohibit-password',
          strictModes: false,
        }),
      );
      mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
      g.sshd = await startSshd(id);
      await startGuard(g.host, g.dir, {
        kind: 'guard',
        gateway: id,
        rotating: { ...ROTATION, clients: BROKERS.map((b) => ({ name: b, secret: secrets[b]!.secret })) },
      });
      const user = gatewayUser(id);
      const config = join(g.dir, 'gateway.json');
      writeFileSync(
        config,
        JSON.stringify({
          kind: 'gateway',
          id,
          routes: EXAMPLE_ROUTES_FILE,
          http: { host: '0.0.0.0', port: 80, mode: 'serve' },
          redis: {
            prefix: PREFIX,
            username: user,
            passwordFile: acl.passwordFiles[user],
            endpoints: BROKERS.map((b) => ({ host: '127.0.0.1', port: REMOTE_PORT[b] })),
          },
          limits: { ratePerSecond: 100000, rateBurst: 100000 },
          replyTimeoutMs: 3000,
        }),
      );
      const gateway = g.host.node(CLI, ['gateway', '--config', config]);
      await gateway.waitForLine((l) => l.includes('gateway listening'), 15000);
    }
    await coreReady;

    // Brokers: own Redis on loopback with the ACL, then nonstop broker.
    for (const b of BROKERS) {
      const { host } = brokers[b]!;
      const bdir = join(dir, `data-${b}`);
      mkdirSync(bdir, { recursive: true });
      host.spawn('redis-server', [
        '--port',
        '6379',
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        bdir,
        '--aclfile',
        acl.aclFile,
      ]);
      await eventually(
        async () => (await host.exec('redis-cli', ['-p', '6379', 'ping'])).stdout.trim() !== '',
        5000,
      );
      const config = join(bdir, 'broker.json');
      writeFileSync(
        config,
        JSON.stringify({
          kind: 'broker',
          id: b,
          routes: EXAMPLE_ROUTES_FILE,
          redis: {
            host: '127.0.0.1',
            port: 6379,
            prefix: PREFIX,
            username: DEFAULT_WORKER_USER,
            passwordFile: acl.passwordFiles[DEFAULT_WORKER_USER],
          },
          gateways: GATEWAYS.map((g) => ({
            id: g,
            ssh: {
              host: gws[g]!.host.ip4,
              port: 22,
              user: 'root',
              hostKeyFingerprint: hostKeys[g]!.fingerprint,
              privateKey: keys[b]!.privateKeyFile,
              remotePort: REMOTE_PORT[b],
              knock: { rotating: { ...ROTATION, client: b, secretFile: secrets[b]!.file } },
            },
          })),
          tunnels: { backoffInitialMs: 100, backoffMaxMs: 1000, keepaliveIntervalMs: 1000 },
          status: { port: STATUS_PORT },
          core: {
            url: `https://${coreIp}:${CORE_PORT}`,
            ca: pki.ca.cert,
            cert: pki.brokers[b]!.cert,
            key: pki.brokers[b]!.key,
            serverName: 'core',
            attemptTimeoutMs: 2000,
          },
        }),
      );
      brokers[b]!.config = config;
    }
    brokersStarted = Date.now();
    for (const b of BROKERS)
      brokers[b]!.process = brokers[b]!.host.node(CLI, ['broker', '--config', brokers[b]!.config]);
  });
  after(() => world?.close());

  test('a request from inet round-trips through both gateways', async (t) => {
    let first: number | undefined;
    await eventually(
      async () => {
        const r = await roundtrip('gw1');
        if (r.created.status === 201 && first === undefined) first = Date.now();
        return r.created.status === 201;
      },
      30000,
      100,
    );
    t.diagnostic(`broker start → first request served through gw1: ${first! - brokersStarted} ms`);
    for (const gw of GATEWAYS) {
      const r = await eventually(async () => (await roundtrip(gw)).created.status === 201, 15000, 100).then(
        () => roundtrip(gw),
      );
      assert.equal(r.created.status, 201, `${gw}: POST /notes`);
      assert.match(r.created.id ?? '', /^[0-9a-f-]{36}$/);
      assert.equal(r.got?.status, 200, `${gw}: GET /notes/:id`);
      assert.equal(r.got?.id, r.created.id);
    }
    // Both brokers' tunnels reached both gateways: every gateway has both remote ports.
    for (const gw of GATEWAYS) {
      const ss = await gws[gw]!.host.check('ss', ['-ltnH']);
      for (const b of BROKERS)
        assert.match(ss, new RegExp(`127\\.0\\.0\\.1:${REMOTE_PORT[b]}\\b`), `${gw} ${b}`);
    }
  });

  test('nothing listens on a broker outside loopback; the core is unreachable from the public side', async () => {
    for (const b of BROKERS) {
      const { host } = brokers[b]!;
      for (const flags of ['-ltnH', '-lunH']) {
        const out = await host.check('ss', [flags]);
        const locals = out
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => l.trim().split(/\s+/)[3]!);
        if (flags === '-ltnH') assert.ok(locals.includes('127.0.0.1:6379'), `${b} Redis listens: ${out}`);
        for (const local of locals)
          assert.match(
            local,
            /^(127\.\d+\.\d+\.\d+|\[::1\]):\d+$/,
            `${b} ${flags}: ${local} is not loopback`,
          );
      }
    }
    const coreIp = core.addresses.private.v4[0]!;
    const probe = async (from: Host) =>
      (await from.runNode(AGENT, ['probe', coreIp, String(CORE_PORT), '--timeout', '1000'])).stdout.trim();
    // Positive control: the brokers do reach it.
    assert.equal(await probe(brokers.b1!.host), 'open');
    for (const from of [inet, gws.gw1!.host, gws.gw2!.host])
      assert.notEqual(await probe(from), 'open', from.name);
  });

  test("a gateway's sshd restart: the tunnels come back and requests succeed again", async (t) => {
    const g = gws.gw1!;
    const pids = [g.sshd.pid, ...descendants(g.sshd.pid)];
    assert.ok(pids.length >= 3, `sshd and its broker sessions: ${pids.join(' ')}`);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await g.sshd.exited;
    const down = await roundtrip('gw1');
    assert.notEqual(down.created.status, 201, 'no broker behind gw1 while its sshd is down');
    t.diagnostic(`gw1 while its sshd is down: ${down.created.status}`);
    const restarted = Date.now();
    g.sshd = await startSshd('gw1');
    await eventually(async () => (await roundtrip('gw1')).created.status === 201, 30000, 50);
    t.diagnostic(`sshd restart → request through gw1 served again: ${Date.now() - restarted} ms`);
    const r = await roundtrip('gw1');
    assert.equal(r.got?.status, 200);
  });

  test('a broker killed under a stream of requests: definite answers, then 201 through the other', async (t) => {
    const answered = async (b: string): Promise<number> => {
      const r = await brokers[b]!.host.exec('curl', [
        '-s',
        '-m',
        '2',
        `http://127.0.0.1:${STATUS_PORT}/metrics`,
      ]);
      let sum = 0;
      for (const m of r.stdout.matchAll(/^nonstop_jobs_total\{gateway="[^"]+",outcome="answered"\} (\d+)$/gm))
        sum += Number(m[1]);
      return sum;
    };
    const COUNT = 200;
    const before = { b1: await answered('b1'), b2: await answered('b2') };
    const stream = inet.spawn(process.execPath, [
      '-e',
      CLIENT,
      JSON.stringify({ mode: 'stream', urls: GATEWAYS.map(url), count: COUNT }),
    ]);
    await stream.waitForLine(() => stream.lines.length >= 50, 30000);
    // Kill the broker that carried the most of the stream so far.
    const during = { b1: (await answered('b1')) - before.b1, b2: (await answered('b2')) - before.b2 };
    const victim = during.b1 >= during.b2 ? 'b1' : 'b2';
    const survivor = victim === 'b1' ? 'b2' : 'b1';
    assert.ok(during[victim] > 0, `the victim carried requests: ${JSON.stringify(during)}`);
    const survivorBefore = await answered(survivor);
    const killedAt = Date.now();
    process.kill(brokers[victim]!.process!.pid, 'SIGKILL');
    await brokers[victim]!.process!.exited;
    const code = await stream.exited;
    assert.equal(code, 0, stream.stderrLines.join('\n'));
    const results = stream.jsonLines() as {
      i: number;
      status: number;
      at: number;
      ms: number;
      error?: string;
    }[];
    assert.equal(results.length, COUNT);
    const counts: Record<string, number> = {};
    for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
    // Sent after the kill (`at` is when the answer came): none of these can be the victim's.
    const afterKill = results.filter((r) => r.at - r.ms > killedAt);
    const inFlight = results.filter((r) => r.at - r.ms <= killedAt && r.at > killedAt);
    t.diagnostic(
      `in flight at the kill: ${JSON.stringify(inFlight.map((r) => ({ status: r.status, ms: r.ms })))}`,
    );
    t.diagnostic(
      `killed ${victim} after ${results.filter((r) => r.at <= killedAt).length} answers (${JSON.stringify(during)} answered by then); outcomes: ${JSON.stringify(counts)}; sent after the kill: ${afterKill.length}, ${afterKill.filter((r) => r.status === 201).length} × 201`,
    );
    for (const r of results)
      assert.ok([201, 503, 504].includes(r.status), `request ${r.i}: ${r.status} ${r.error ?? ''}`);
    const failed = results.filter((r) => r.status !== 201);
    assert.ok(failed.length <= 20, `few failures: ${failed.length}`);
    assert.ok(
      failed.every((r) => r.at > killedAt),
      'no failure before the kill',
    );
    const tail = results.slice(-50);
    assert.ok(
      tail.every((r) => r.status === 201),
      `the last 50 all 201: ${tail.map((r) => r.status).join(',')}`,
    );
    // Every 201 after the kill came through the survivor.
    const survivorServed = (await answered(survivor)) - survivorBefore;
    const okAfter = afterKill.filter((r) => r.status === 201).length;
    assert.ok(survivorServed >= okAfter, `${survivor} answered ${survivorServed} ≥ ${okAfter}`);
  });
});
