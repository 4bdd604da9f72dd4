// A gateway's Redis password rotated on a running Redis, as README's "Rotating credentials" does
// it: the ACL holds the old and the new one (`<user>.previous-password`), applied live with
// ACL SETUSER (no restart, no client dropped); the gateway's connection, told the new one in its
// password file, uses it from its next reconnect; then the old one is removed and refused.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { ADMIN_USER, DEFAULT_WORKER_USER, gatewayUser } from '../../broker/redis-acl.js';
import { writeRedisServers } from '../../broker/redis-config.js';
import { applyAclPasswords } from '../../broker/redis-passwords.js';
import { createRedis } from '../../lib/redis.js';
import { captureLogger } from '../helpers/log.js';
import { useRenderedRedis } from '../helpers/redis-server.js';
import { until } from '../helpers/until.js';

const LIMITS = {
  maxMemoryMb: 64,
  maxClients: 16,
  maxJobBytes: 1024 * 1024,
  idleTimeoutSeconds: 120,
  cpuWeight: 50,
  cpuQuotaPercent: null,
};
const GW = 'gwr';
const USER = gatewayUser(GW);
/** Fixed, so that every run rotates the same way. */
const NEW = 'rotated-password-of-gwr-0123456789abcdefghijklmn';

describe('Redis password rotation on a running Redis', () => {
  const ctx = useRenderedRedis([GW], LIMITS);

  test('old and new open, then the new only; the connected gateway is never dropped', async (t) => {
    const server = ctx.servers.get(GW)!;
    const out = dirname(dirname(server.aclFile));
    const render = () =>
      writeRedisServers(
        out,
        [{ gatewayId: GW, port: server.port, prefix: 'rendered', workerUser: DEFAULT_WORKER_USER }],
        LIMITS,
      )[0]!;
    const old = ctx.password(GW, USER);
    const refused = async (password: string) => {
      const c = ctx.as(GW, USER, password);
      return c.ping().then(
        () => false,
        (err: Error) => /WRONGPASS/.test(err.message),
      );
    };
    const admin = ctx.as(GW, ADMIN_USER);

    // The gateway, connected with the old password from its file.
    const home = mkdtempSync(join(tmpdir(), 'nonstop-gw-password-'));
    t.after(() => rmSync(home, { recursive: true, force: true }));
    const gatewayFile = join(home, 'redis-password');
    writeFileSync(gatewayFile, `${old}\n`);
    const log = captureLogger('info');
    const gateway = createRedis(
      { host: '127.0.0.1', port: server.port, username: USER, passwordFile: gatewayFile, prefix: 'rendered' },
      'fail-fast',
      'gateway-under-test',
      log.logger,
      { readyCheck: false },
    );
    t.after(() => gateway.disconnect());
    await until('the gateway connected', () => gateway.status === 'ready', 5000);
    const gatewayId = Number(await admin.call('CLIENT', 'ID'));
    assert.ok(gatewayId > 0);
    const clients = async () => String(await admin.call('CLIENT', 'LIST', 'TYPE', 'normal'));
    const gatewayConnections = async () =>
      (await clients()).split('\n').filter((l) => l.includes('name=gateway-under-test')).length;
    assert.equal(await gatewayConnections(), 1, await clients());

    // 1. The ACL holds both: rendered as a password-only change, applied live.
    const userDir = join(out, GW);
    writeFileSync(join(userDir, `${USER}.previous-password`), `${old}\n`, { mode: 0o600 });
    writeFileSync(join(userDir, `${USER}.password`), `${NEW}\n`, { mode: 0o600 });
    const both = render();
    assert.deepEqual(both.written, [server.aclFile]);
    assert.equal(both.passwordsOnly, true, 'only passwords changed: no restart needed');
    assert.equal(both.users.find((u) => u.name === USER)!.hashes.length, 2);
    await applyAclPasswords(both);
    assert.equal(await refused(old), false, 'the old password still opens');
    assert.equal(await refused(NEW), false, 'the new password opens');
    assert.equal(await gateway.ping(), 'PONG', 'the connected gateway is untouched');

    // 2. The gateway's file holds the new one; its next connection uses it (nothing changes now).
    writeFileSync(gatewayFile, `${NEW}\n`);
    assert.equal(await gateway.ping(), 'PONG');

    // 3. The old one is removed, live: refused from now on, and the gateway is still connected.
    unlinkSync(join(userDir, `${USER}.previous-password`));
    const after = render();
    assert.equal(after.passwordsOnly, true);
    await applyAclPasswords(after);
    assert.equal(await refused(old), true, 'the old password is refused');
    assert.equal(await refused(NEW), false);
    assert.equal(await gateway.ping(), 'PONG', 'never dropped by the rotation');
    assert.equal(await gatewayConnections(), 1);

    // Its connection dropped now: it logs in again, and only the new password can do that.
    await admin.call('CLIENT', 'KILL', 'USER', USER);
    await until(
      'the gateway reconnected',
      async () => (await gateway.ping().catch(() => '')) === 'PONG',
      5000,
    );
    assert.ok(
      log.lines().some((l) => l.msg === 'redis password file changed; reconnecting with the new password'),
      'it said it picked up the new password',
    );
    assert.doesNotMatch(log.text(), new RegExp(`${NEW}|${old}`), 'no password in the log');

    // A change that is not only passwords is not called one.
    const rules = render();
    assert.deepEqual(rules.written, [], 'nothing changed: nothing written');
    assert.equal(rules.passwordsOnly, false);
  });
});
