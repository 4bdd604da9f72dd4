// Credential rotation without an outage, as steps of the chaos suite: a broker's knock secret,
// every gateway's Redis password, the broker's SSH key and the broker/core certificates, one at a
// time, each in README's three steps ("Rotating credentials", the same renderers Ansible runs):
// the receiving side accepts old and new, the sending side switches (its files; it reads them
// again before its next connection), the receiving side forgets the old. Under traffic no step
// may fail a request (the suite holds each step's requests to that). Then every tunnel, dropped,
// must come back on the new credentials alone, and the old ones must open nothing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { TLS_RECHECK_MS } from '../../broker/core-client.js';
import { brokerFiles } from '../../config/render/broker.js';
import { knockProfilesDocument } from '../../config/render/knock.js';
import { generatePki } from '../../lib/pki.js';
import { writeAtomically } from '../../lib/write-atomically.js';
import {
  ADMIN_CLIENT,
  CLI,
  sshKeygen,
  type BrokerNode,
  type GatewayNode,
  type ThreeTier,
} from '../../world/three-tier.js';
import { packageRoot } from '../../world/world.js';
import { BATCH_SSH_OPTIONS, probe } from '../e2e/gateway.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface RotationStep {
  readonly name: string;
  run(): void | Promise<void>;
}

export interface CredentialRotation {
  /** The twelve steps, in order: each must leave every request it carries answered 201. */
  readonly steps: readonly RotationStep[];
  /**
   * Drops every broker's tunnel into every gateway, one at a time: each broker knocks, logs in
   * and forwards again with what its files hold now, and each gateway logs in to that broker's
   * Redis with what its password file holds now. Asserts that the rotated broker connected with
   * its new key and every gateway with its new password. Under traffic this is a fault (a reply
   * in flight on a dropped tunnel can be lost, and the client retries). Returns a diagnostic.
   */
  reconnectAll(): Promise<string>;
  /** With the cores still up: the old credentials open nothing, and the new ones do. */
  assertOnlyNewAccepted(): Promise<void>;
}

/**
 * Everything the rotation of `brokerId`'s credentials (and every gateway's Redis password) needs,
 * made before the stream starts: the new knock secrets (the documented command), SSH key and PKI,
 * and copies of the old ones to try afterwards.
 */
export async function prepareRotation(tt: ThreeTier, brokerId: string): Promise<CredentialRotation> {
  const broker = tt.broker(brokerId);
  const files = brokerFiles(broker.dir);

  // 1. The broker's knock secret for every gateway (its guard client's secret).
  const oldSecrets = new Map<string, string>();
  const newSecrets = new Map<string, string>();
  for (const g of tt.gateways) {
    oldSecrets.set(g.id, readFileSync(files.knockSecret(g.id), 'utf8').trim());
    const { stdout } = await run(process.execPath, [
      join(packageRoot(), CLI),
      'knock-secret',
      '--gateway',
      g.id,
      '--client',
      brokerId,
    ]);
    newSecrets.set(g.id, (JSON.parse(stdout) as { guardClient: { secret: string } }).guardClient.secret);
  }
  const withSecret = (gatewayId: string, secret: string, previousSecret?: string) => {
    const input = tt.gateway(gatewayId).guardInput;
    return {
      ...input,
      clients: (input.clients ?? []).map((c) =>
        c.name === brokerId
          ? { name: c.name, secret, ...(previousSecret === undefined ? {} : { previousSecret }) }
          : c,
      ),
    };
  };

  // 2. Every gateway's Redis password (the same on every broker, as the vault's). Fixed, so that
  // every run rotates the same way.
  const oldPasswords = new Map(
    tt.gateways.map((g) => [g.id, readFileSync(g.redisPasswordFile, 'utf8').trim()]),
  );
  const newPassword = (gatewayId: string) => `rotated-redis-password-of-${gatewayId}-0123456789abcdef`;
  const userFile = (b: BrokerNode, g: GatewayNode, suffix: string) =>
    join(dirname(tt.redis(b.id, g.id).aclFile), `${g.redisUser}.${suffix}`);

  // 3. The broker's SSH key (every gateway's tunnel authorized_keys).
  const oldKey = broker.sshKey;
  const newKey = await sshKeygen(join(broker.dir, 'ssh'), 'id_ed25519.rotated');
  const oldKeyCopy = `${oldKey.privateKeyFile}.old`;
  copyFileSync(oldKey.privateKeyFile, oldKeyCopy);
  const withKey = (g: GatewayNode, previous: boolean) =>
    g.tunnelBrokers.map((x) =>
      x.id === brokerId
        ? {
            id: x.id,
            port: x.port,
            publicKey: newKey.publicKey,
            ...(previous ? { previousPublicKey: oldKey.publicKey } : {}),
          }
        : x,
    );

  // 4. The certificates between brokers and cores: a new internal CA, trusted next to the old
  // one, then new certificates from it, then the old CA forgotten. The cores reread on SIGHUP,
  // each broker's cells look at their files every TLS_RECHECK_MS. (Every core host has the same
  // certificate, as a deployment behind one name would.)
  const oldCa = readFileSync(tt.core.caFile, 'utf8');
  const newPki = await generatePki({
    dir: join(tt.dir, 'pki-rotated'),
    brokers: tt.brokers.map((b) => b.id),
    gateways: tt.gateways.map((g) => g.id),
    coreNames: ['core', ...tt.cores.map((c) => c.ip)],
    gatewayNames: tt.gateways.map((g) => g.ip),
  });
  const newCa = readFileSync(newPki.ca.cert, 'utf8');
  const oldBrokerCert = { cert: `${files.cert}.old`, key: `${files.key}.old` };
  copyFileSync(files.cert, oldBrokerCert.cert);
  copyFileSync(files.key, oldBrokerCert.key);
  const brokerLines = () => tt.brokers.map((b) => b.process.lines.length);
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
  const setCa = async (pem: string) => {
    const from = brokerLines();
    for (const c of tt.cores) {
      writeAtomically(c.caFile, pem, 0o600);
      await tt.reloadCoreTls(c);
    }
    for (const b of tt.brokers) writeAtomically(brokerFiles(b.dir).ca, pem, 0o600);
    await brokersReloaded(from);
  };

  /** Where the switching started in the processes that must show they used the new credentials. */
  let switched: { broker: number; gateways: number[] } | undefined;

  const steps: RotationStep[] = [
    {
      name: 'rotation: knock secret, guards accept old and new',
      run: async () => {
        for (const g of tt.gateways)
          await tt.reconfigureGuard(g.id, withSecret(g.id, newSecrets.get(g.id)!, oldSecrets.get(g.id)));
      },
    },
    {
      name: 'rotation: knock secret, the broker switches',
      run: () => {
        for (const g of tt.gateways)
          writeAtomically(files.knockSecret(g.id), `${newSecrets.get(g.id)}\n`, 0o600);
      },
    },
    {
      name: 'rotation: knock secret, guards forget the old',
      run: async () => {
        for (const g of tt.gateways) await tt.reconfigureGuard(g.id, withSecret(g.id, newSecrets.get(g.id)!));
      },
    },
    {
      name: "rotation: Redis password, every broker's Redis accepts old and new",
      run: async () => {
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
      },
    },
    {
      name: 'rotation: Redis password, the gateways switch',
      run: () => {
        switched = {
          broker: broker.process.lines.length,
          gateways: tt.gateways.map((g) => g.gateway.lines.length),
        };
        for (const g of tt.gateways) writeAtomically(g.redisPasswordFile, `${newPassword(g.id)}\n`, 0o600);
      },
    },
    {
      name: 'rotation: Redis password, Redis forgets the old',
      run: async () => {
        for (const b of tt.brokers) {
          for (const g of tt.gateways) unlinkSync(userFile(b, g, 'previous-password'));
          const out = await tt.applyRedisPasswords(b.id);
          assert.doesNotMatch(out, /^wrote /m, out);
        }
      },
    },
    {
      name: 'rotation: SSH key, gateways accept old and new',
      run: () => {
        for (const g of tt.gateways) tt.setTunnelKeys(g.id, withKey(g, true));
      },
    },
    {
      name: 'rotation: SSH key, the broker switches',
      run: () => {
        writeAtomically(oldKey.privateKeyFile, readFileSync(newKey.privateKeyFile, 'utf8'), 0o600);
      },
    },
    {
      name: 'rotation: SSH key, gateways forget the old',
      run: () => {
        for (const g of tt.gateways) tt.setTunnelKeys(g.id, withKey(g, false));
      },
    },
    {
      name: 'rotation: certificates, cores and brokers trust the old and the new CA',
      run: () => setCa(oldCa + newCa),
    },
    {
      name: 'rotation: certificates, cores and brokers switch to the new ones',
      run: async () => {
        const from = brokerLines();
        for (const c of tt.cores) {
          writeAtomically(c.keyFile, readFileSync(newPki.core.key, 'utf8'), 0o600);
          writeAtomically(c.certFile, readFileSync(newPki.core.cert, 'utf8'), 0o600);
          await tt.reloadCoreTls(c);
        }
        for (const b of tt.brokers) {
          writeAtomically(brokerFiles(b.dir).key, readFileSync(newPki.brokers[b.id]!.key, 'utf8'), 0o600);
          writeAtomically(brokerFiles(b.dir).cert, readFileSync(newPki.brokers[b.id]!.cert, 'utf8'), 0o600);
        }
        await brokersReloaded(from);
      },
    },
    {
      name: 'rotation: certificates, cores and brokers forget the old CA',
      run: () => setCa(newCa),
    },
  ];

  /** Guard lines of `gatewayId` since `from` that say `who`'s knock opened SSH. */
  const opened = (gatewayId: string, from: number, who: string) =>
    tt
      .gateway(gatewayId)
      .guard.lines.slice(from)
      .filter((l) => l.includes('"event":"knock"') && l.includes('"outcome":"opened"'))
      .filter((l) => l.includes(`"client":"${who}"`)).length;

  const reconnectAll = async (): Promise<string> => {
    assert.ok(switched !== undefined, 'the rotation ran before its tunnels are dropped');
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
    assert.ok(
      broker.process.lines.slice(switched.broker).some((l) => l.includes('"event":"ssh-key-changed"')),
      `${brokerId} connected with its new SSH key`,
    );
    tt.gateways.forEach((g, i) =>
      assert.ok(
        g.gateway.lines.slice(switched!.gateways[i]).some((l) => l.includes('redis password file changed')),
        `${g.id} logged in to Redis with its new password`,
      ),
    );
    return `every tunnel dropped and back on the new credentials: ${tt.brokers.length * tt.gateways.length}`;
  };

  const assertOnlyNewAccepted = async (): Promise<void> => {
    // A client certificate from the old CA is refused by every core; the new one gets through.
    for (const c of tt.cores) {
      const curl = (cert: { cert: string; key: string }) =>
        broker.host.exec('curl', [
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
          `core:${c.port}:${c.ip}`,
          `https://core:${c.port}/`,
        ]);
      const withOldCert = await curl(oldBrokerCert);
      assert.notEqual(withOldCert.code, 0, `${c.ip}: the old CA's client certificate gets no answer`);
      assert.equal(withOldCert.stdout, '000');
      const withNewCert = await curl({ cert: files.cert, key: files.key });
      assert.equal(withNewCert.code, 0, `${c.ip}: the new certificate gets an answer: ${withNewCert.stderr}`);
      assert.match(withNewCert.stdout, /^[1-5]\d\d$/);
    }

    // The old knock secret, sent from inet: SSH stays filtered.
    const gw1 = tt.gateways[0]!;
    const oldProfiles = join(tt.dir, 'knock', 'old-secret.json');
    writeFileSync(
      oldProfiles,
      JSON.stringify(
        knockProfilesDocument({
          client: brokerId,
          rotation: gw1.guardInput.rotation ?? {},
          gateways: [{ id: gw1.id, address: gw1.ip, secret: oldSecrets.get(gw1.id)!, profile: 'old' }],
        }),
      ),
    );
    const from = gw1.guard.lines.length;
    assert.equal(await probe(tt.inet, gw1.ip, 22), 'filtered', 'SSH is filtered from inet before any knock');
    await tt.inet.runNode(CLI, ['knock', gw1.ip, '--profiles', oldProfiles, '--profile', 'old']);
    await sleep(500);
    assert.equal(await probe(tt.inet, gw1.ip, 22), 'filtered', 'the old knock secret opens nothing');
    assert.equal(opened(gw1.id, from, brokerId), 0);
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
  };

  return { steps, reconnectAll, assertOnlyNewAccepted };
}
