// Credential rotation without an outage: a steady stream of uniquely marked requests through the
// whole world (the chaos suite's client and ledgers) while credentials are rotated one at a time,
// each step done as README's "Rotating credentials" says (the same renderers Ansible runs):
// the receiving side accepts old and new, the sending side switches (its files; it reads them
// again before its next connection), the receiving side forgets the old. Knock secret, Redis
// password, a broker's SSH key, the broker/core certificates. No attempt of any request may be
// answered other than 201, and nothing may be lost or done twice. Then, with the stream stopped,
// every tunnel is dropped and the core restarted: everything comes back on the new credentials
// alone, and the old ones open nothing. (A tunnel dropped under traffic is a fault, the chaos
// suite's: a reply in flight on it can be lost and the client retries.)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { brokerFiles } from '../../config/render/broker.js';
import { knockProfilesDocument } from '../../config/render/knock.js';
import { TLS_RECHECK_MS } from '../../broker/core-client.js';
import { generatePki } from '../../lib/pki.js';
import { writeAtomically } from '../../lib/write-atomically.js';
import {
  ADMIN_CLIENT,
  CLI,
  sshKeygen,
  ThreeTier,
  type BrokerNode,
  type GatewayNode,
} from '../../world/three-tier.js';
import { packageRoot, worldSkipReason, type HostProcess } from '../../world/world.js';
import { BATCH_SSH_OPTIONS, probe } from './gateway.js';
import type { ChaosResult } from '../world/chaos-client.js';
import { phaseTable, reconcile, waitForEmptyQueues, type Phase } from '../world/ledgers.js';
import { countNotes } from '../world/notes.js';

const skip = worldSkipReason();
const CHAOS_CLIENT = 'dist/test/world/chaos-client.js';
const RUN = randomBytes(4).toString('hex');
const GIVE_UP_MS = 60_000;
/** The broker whose credentials are rotated. */
const ROTATED = 'b1';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('credential rotation: no request fails', { skip }, () => {
  let tt: ThreeTier;
  let client: HostProcess;
  const phases: Phase[] = [];

  before(async () => {
    setPriority(-10);
    tt = await ThreeTier.start({ corePostgres: true });
  });
  after(() => tt?.close());

  async function phase(name: string, step: () => void | Promise<void>): Promise<void> {
    const p: Phase = { name, start: Date.now(), end: 0 };
    phases.push(p);
    await step();
    await tt.waitUntilServing(60_000);
    await sleep(1000); // traffic on what this step left before the next one
    p.end = Date.now();
  }

  /** Guard lines of `gatewayId` since `from` that say `client`'s knock opened SSH. */
  const opened = (gatewayId: string, from: number, who: string) =>
    tt
      .gateway(gatewayId)
      .guard.lines.slice(from)
      .filter((l) => l.includes('"event":"knock"') && l.includes('"outcome":"opened"'))
      .filter((l) => l.includes(`"client":"${who}"`)).length;

  /**
   * Drops every broker's tunnel into every gateway, one at a time, with no traffic: each
   * knocks, logs in and forwards again with what its files hold now, and each gateway logs in to
   * that broker's Redis again with what its password file holds now. Resolves once all are back.
   */
  async function reconnectAll(t: TestContext): Promise<void> {
    for (const b of tt.brokers) {
      for (const g of tt.gateways) {
        const from = g.guard.lines.length;
        await tt.dropTunnel(g.id, b.id);
        await tt.waitUntilServing(60_000);
        assert.ok(
          opened(g.id, from, b.id) >= 1,
          `${b.id} knocked ${g.id} open again after its tunnel dropped`,
        );
      }
    }
    t.diagnostic(`every tunnel dropped and back: ${tt.brokers.length * tt.gateways.length}`);
  }

  test(
    'knock secret, Redis password, SSH key, certificates: one at a time, under traffic',
    { timeout: 900_000 },
    async (t) => {
      const b1 = tt.broker(ROTATED);
      client = tt.inet.node(CHAOS_CLIENT, [
        JSON.stringify({
          urls: tt.gateways.map((g) => g.httpUrl),
          run: RUN,
          concurrency: 8,
          attemptTimeoutMs: 8000,
          giveUpMs: GIVE_UP_MS,
        }),
      ]);
      await phase('steady', () => sleep(3000));

      // 1. ROTATED's knock secret for every gateway (its guard client's secret).
      const oldSecrets = new Map<string, string>();
      const newSecrets = new Map<string, string>();
      for (const g of tt.gateways) {
        oldSecrets.set(g.id, readFileSync(brokerFiles(b1.dir).knockSecret(g.id), 'utf8').trim());
        // The documented command makes the new one.
        const { stdout } = await run(process.execPath, [
          join(packageRoot(), CLI),
          'knock-secret',
          '--gateway',
          g.id,
          '--client',
          ROTATED,
        ]);
        newSecrets.set(g.id, (JSON.parse(stdout) as { guardClient: { secret: string } }).guardClient.secret);
      }
      const withSecret = (gatewayId: string, secret: string, previousSecret?: string) => {
        const input = tt.gateway(gatewayId).guardInput;
        return {
          ...input,
          clients: (input.clients ?? []).map((c) =>
            c.name === ROTATED
              ? { name: c.name, secret, ...(previousSecret === undefined ? {} : { previousSecret }) }
              : c,
          ),
        };
      };
      await phase('knock secret: guards accept old and new', async () => {
        for (const g of tt.gateways)
          await tt.reconfigureGuard(g.id, withSecret(g.id, newSecrets.get(g.id)!, oldSecrets.get(g.id)));
      });
      await phase('knock secret: the broker switches', () => {
        for (const g of tt.gateways)
          writeAtomically(brokerFiles(b1.dir).knockSecret(g.id), `${newSecrets.get(g.id)}\n`, 0o600);
      });
      await phase('knock secret: guards forget the old', async () => {
        for (const g of tt.gateways) await tt.reconfigureGuard(g.id, withSecret(g.id, newSecrets.get(g.id)!));
      });

      // 2. Every gateway's Redis password (the same on every broker, as the vault's).
      const oldPasswords = new Map(
        tt.gateways.map((g) => [g.id, readFileSync(g.redisPasswordFile, 'utf8').trim()]),
      );
      // Fixed, so that every run rotates the same way.
      const newPassword = (gatewayId: string) => `rotated-redis-password-of-${gatewayId}-0123456789abcdef`;
      const userFile = (b: BrokerNode, g: GatewayNode, suffix: string) =>
        join(dirname(tt.redis(b.id, g.id).aclFile), `${g.redisUser}.${suffix}`);
      await phase("Redis password: every broker's Redis accepts old and new", async () => {
        for (const b of tt.brokers) {
          for (const g of tt.gateways) {
            writeAtomically(userFile(b, g, 'previous-password'), `${oldPasswords.get(g.id)}\n`, 0o600);
            writeAtomically(userFile(b, g, 'password'), `${newPassword(g.id)}\n`, 0o600);
          }
          const out = await tt.applyRedisPasswords(b.id);
          // A password-only change: applied live, nothing for a restart.
          assert.doesNotMatch(out, /^wrote /m, out);
          assert.equal(out.match(/^passwords .*users\.acl$/gm)?.length, tt.gateways.length, out);
        }
      });
      await phase('Redis password: the gateways switch', () => {
        for (const g of tt.gateways) writeAtomically(g.redisPasswordFile, `${newPassword(g.id)}\n`, 0o600);
      });
      await phase('Redis password: Redis forgets the old', async () => {
        for (const b of tt.brokers) {
          for (const g of tt.gateways) unlinkSync(userFile(b, g, 'previous-password'));
          const out = await tt.applyRedisPasswords(b.id);
          assert.doesNotMatch(out, /^wrote /m, out);
        }
      });

      // 3. ROTATED's SSH key (every gateway's tunnel authorized_keys).
      const oldKey = b1.sshKey;
      const newKey = await sshKeygen(join(b1.dir, 'ssh'), 'id_ed25519.rotated');
      const withKey = (g: GatewayNode, previous: boolean) =>
        g.tunnelBrokers.map((x) =>
          x.id === ROTATED
            ? {
                id: x.id,
                port: x.port,
                publicKey: newKey.publicKey,
                ...(previous ? { previousPublicKey: oldKey.publicKey } : {}),
              }
            : x,
        );
      await phase('SSH key: gateways accept old and new', () => {
        for (const g of tt.gateways) tt.setTunnelKeys(g.id, withKey(g, true));
      });
      const oldKeyCopy = `${oldKey.privateKeyFile}.old`;
      copyFileSync(oldKey.privateKeyFile, oldKeyCopy);
      await phase('SSH key: the broker switches', () => {
        writeAtomically(oldKey.privateKeyFile, readFileSync(newKey.privateKeyFile, 'utf8'), 0o600);
      });
      await phase('SSH key: gateways forget the old', () => {
        for (const g of tt.gateways) tt.setTunnelKeys(g.id, withKey(g, false));
      });

      // 4. The certificates between brokers and core: a new internal CA, trusted next to the old
      // one, then new certificates from it, then the old CA forgotten. The core rereads on SIGHUP,
      // each broker's cells look at their files every TLS_RECHECK_MS.
      const oldPki = { ca: readFileSync(tt.core.caFile, 'utf8') };
      const newPki = await generatePki({
        dir: join(tt.dir, 'pki-rotated'),
        brokers: tt.brokers.map((b) => b.id),
        gateways: tt.gateways.map((g) => g.id),
        coreNames: ['core', tt.core.ip],
        gatewayNames: tt.gateways.map((g) => g.ip),
      });
      const newCa = readFileSync(newPki.ca.cert, 'utf8');
      const oldBrokerCert = {
        cert: `${brokerFiles(b1.dir).cert}.old`,
        key: `${brokerFiles(b1.dir).key}.old`,
      };
      copyFileSync(brokerFiles(b1.dir).cert, oldBrokerCert.cert);
      copyFileSync(brokerFiles(b1.dir).key, oldBrokerCert.key);
      /** Resolves once every cell of every broker said it took changed TLS files (since `from`). */
      const brokersReloaded = async (from: readonly number[]) => {
        const end = Date.now() + 4 * TLS_RECHECK_MS;
        for (;;) {
          const counts = tt.brokers.map(
            (b, i) => b.process.lines.slice(from[i]).filter((l) => l.includes('TLS files changed')).length,
          );
          if (counts.every((n) => n >= tt.gateways.length)) return;
          if (Date.now() > end)
            throw new Error(`the brokers' cells reloaded their TLS files: ${counts.join(', ')}`);
          await sleep(200);
        }
      };
      const brokerLines = () => tt.brokers.map((b) => b.process.lines.length);
      await phase('certificates: core and brokers trust the old and the new CA', async () => {
        const from = brokerLines();
        writeAtomically(tt.core.caFile, oldPki.ca + newCa, 0o600);
        await tt.reloadCoreTls();
        for (const b of tt.brokers) writeAtomically(brokerFiles(b.dir).ca, oldPki.ca + newCa, 0o600);
        await brokersReloaded(from);
      });
      await phase('certificates: core and brokers switch to the new ones', async () => {
        const from = brokerLines();
        writeAtomically(tt.core.keyFile, readFileSync(newPki.core.key, 'utf8'), 0o600);
        writeAtomically(tt.core.certFile, readFileSync(newPki.core.cert, 'utf8'), 0o600);
        await tt.reloadCoreTls();
        for (const b of tt.brokers) {
          writeAtomically(brokerFiles(b.dir).key, readFileSync(newPki.brokers[b.id]!.key, 'utf8'), 0o600);
          writeAtomically(brokerFiles(b.dir).cert, readFileSync(newPki.brokers[b.id]!.cert, 'utf8'), 0o600);
        }
        await brokersReloaded(from);
      });
      await phase('certificates: core and brokers forget the old CA', async () => {
        const from = brokerLines();
        writeAtomically(tt.core.caFile, newCa, 0o600);
        await tt.reloadCoreTls();
        for (const b of tt.brokers) writeAtomically(brokerFiles(b.dir).ca, newCa, 0o600);
        await brokersReloaded(from);
      });

      // Stop the stream; every request under way ends with a definite answer or gives up.
      client.child.stdin?.end();
      const code = await Promise.race([client.exited, sleep(GIVE_UP_MS + 30_000).then(() => 'timeout')]);
      assert.equal(code, 0, `chaos client: ${code} ${client.stderrLines.join('\n')}`);
      const results = client.jsonLines() as unknown as ChaosResult[];
      const queued = await waitForEmptyQueues(tt, 30_000);

      // The new credentials are what every connection uses now: each tunnel, dropped, comes back
      // with only them accepted (the guards, sshd and every Redis know nothing else any more).
      const brokerFrom = b1.process.lines.length;
      const gatewayFrom = tt.gateways.map((g) => g.gateway.lines.length);
      await reconnectAll(t);
      assert.ok(
        b1.process.lines.slice(brokerFrom).some((l) => l.includes('"event":"ssh-key-changed"')),
        `${ROTATED} connected with its new SSH key`,
      );
      tt.gateways.forEach((g, i) =>
        assert.ok(
          g.gateway.lines.slice(gatewayFrom[i]).some((l) => l.includes('redis password file changed')),
          `${g.id} logged in to Redis with its new password`,
        ),
      );

      // The core restarted: every broker connects to it anew, with only the new CA on both sides.
      await tt.restartCore();
      await tt.waitUntilServing(60_000);
      // A client certificate from the old CA is refused by the core; the new one gets through.
      const curl = (cert: { cert: string; key: string }) =>
        b1.host.exec('curl', [
          '-s',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '-m',
          '5',
          '--cacert',
          newPki.ca.cert,
          '--cert',
          cert.cert,
          '--key',
          cert.key,
          '--resolve',
          `core:${tt.core.port}:${tt.core.ip}`,
          `https://core:${tt.core.port}/`,
        ]);
      const withOldCert = await curl(oldBrokerCert);
      assert.notEqual(withOldCert.code, 0, "the old CA's client certificate gets no answer");
      assert.equal(withOldCert.stdout, '000');
      const withNewCert = await curl({ cert: brokerFiles(b1.dir).cert, key: brokerFiles(b1.dir).key });
      assert.equal(withNewCert.code, 0, `the new certificate gets an answer: ${withNewCert.stderr}`);
      assert.match(withNewCert.stdout, /^[1-5]\d\d$/);

      // The old credentials open nothing. The old knock secret, sent from inet: SSH stays filtered.
      const gw1 = tt.gateways[0]!;
      const oldProfiles = join(tt.dir, 'knock', 'old-secret.json');
      writeFileSync(
        oldProfiles,
        JSON.stringify(
          knockProfilesDocument({
            client: ROTATED,
            rotation: gw1.guardInput.rotation ?? {},
            gateways: [{ id: gw1.id, address: gw1.ip, secret: oldSecrets.get(gw1.id)!, profile: 'old' }],
          }),
        ),
      );
      const from = gw1.guard.lines.length;
      assert.equal(
        await probe(tt.inet, gw1.ip, 22),
        'filtered',
        'SSH is filtered from inet before any knock',
      );
      await tt.inet.runNode(CLI, ['knock', gw1.ip, '--profiles', oldProfiles, '--profile', 'old']);
      await sleep(500);
      assert.equal(await probe(tt.inet, gw1.ip, 22), 'filtered', 'the old knock secret opens nothing');
      assert.equal(opened(gw1.id, from, ROTATED), 0);
      // The control: the admin's knock from the same place opens SSH (for the key checks below).
      await tt.inet.runNode(CLI, [
        'knock',
        gw1.ip,
        '--profiles',
        tt.adminKnockProfiles,
        '--profile',
        `${ADMIN_CLIENT}-${gw1.id}`,
      ]);
      await sleep(500);
      assert.equal(await probe(tt.inet, gw1.ip, 22), 'open', "the admin's knock from inet opens");
      // The old SSH key is refused as the tunnel user; the new one logs in (to nologin).
      const login = (key: string) =>
        tt.inet.exec('ssh', [
          ...BATCH_SSH_OPTIONS,
          '-o',
          'IdentitiesOnly=yes',
          '-i',
          key,
          `root@${gw1.ip}`,
          'true',
        ]);
      const withOld = await login(oldKeyCopy);
      assert.match(withOld.stderr, /Permission denied \(publickey\)/, `the old key: ${withOld.stderr}`);
      const withNew = await login(newKey.privateKeyFile);
      assert.doesNotMatch(withNew.stderr, /Permission denied/, `the new key: ${withNew.stderr}`);
      // The old Redis password is refused by every broker's Redis; the new one opens.
      for (const b of tt.brokers) {
        for (const g of tt.gateways) {
          const cli = (password: string) =>
            b.host.exec('redis-cli', [
              '--no-auth-warning',
              '-p',
              String(tt.redis(b.id, g.id).port),
              '--user',
              g.redisUser,
              '--pass',
              password,
              'PING',
            ]);
          const old = await cli(oldPasswords.get(g.id)!);
          assert.match(old.stdout + old.stderr, /WRONGPASS/, `${b.id}/${g.id}: the old password is refused`);
          const fresh = await cli(newPassword(g.id));
          assert.match(fresh.stdout, /PONG/, `${b.id}/${g.id}: the new password opens`);
        }
      }

      await tt.core.process.stop(10_000);
      const effects = await countNotes(tt.core.postgres!, `chaos-${RUN}-%`);
      const { tallies, problems } = reconcile(results, effects, phases);
      t.diagnostic(phaseTable(phases, tallies));
      for (const p of phases)
        t.diagnostic(`${p.name}: attempts by status ${JSON.stringify(tallies.get(p.name)?.attempts)}`);
      // No request failed: not one attempt was answered other than 201 (no retry was needed).
      const failedAttempts = results.filter((r) => r.statuses.some((s) => s !== 201));
      for (const r of failedAttempts.slice(0, 10)) {
        const phase = phases.find((x) => r.firstSentAt < x.end)?.name;
        t.diagnostic(`${r.marker} (${phase}): ${JSON.stringify(r.failures)}`);
        for (const f of r.failures ?? []) {
          if (f.requestId === undefined) continue;
          const logs = [
            ...tt.gateways.map((g) => [g.id, g.gateway.lines] as const),
            ...tt.brokers.map((b) => [b.id, b.process.lines] as const),
          ];
          for (const [who, lines] of logs)
            for (const l of lines.filter((x) => x.includes(f.requestId!)).slice(0, 5))
              t.diagnostic(`  ${who}: ${l.slice(0, 400)}`);
        }
      }
      assert.ok(results.length > 200, `a steady stream: ${results.length} requests`);
      for (const p of phases)
        assert.ok((tallies.get(p.name)?.sent ?? 0) > 0, `${p.name}: requests were sent`);
      assert.deepEqual(problems, []);
      assert.deepEqual(
        failedAttempts.map((r) => `${r.marker}: ${r.statuses.join(',')}`),
        [],
        'every attempt of every request was answered 201',
      );
      assert.equal(
        Object.values(queued).reduce((a, b) => a + b, 0),
        0,
        'the queues hold nothing',
      );
    },
  );
});
