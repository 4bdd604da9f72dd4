// The rendered ACL file on a private redis-server: each gateway user is confined to its own
// queue and cannot administer Redis, while the real gateway and broker code run as these
// users without a single NOPERM (so a BullMQ upgrade that needs more fails here).
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { ADMIN_USER, DEFAULT_WORKER_USER, gatewayUser, writeAcl } from '../../broker/redis-acl.js';
import { REDIS_CPU_QUOTA_PERCENT, REDIS_CPU_WEIGHT } from '../../config/schemas/broker.js';
import { startCore } from '../../core/server.js';
import { silentLogger } from '../../lib/log.js';
import { brokerConfigDoc, startTestBroker } from '../helpers/broker.js';
import { testCoreConfig } from '../helpers/core.js';
import { startTestGateway, untilReady } from '../helpers/gateway.js';
import { useTestSchema } from '../helpers/pg.js';
import { usePki } from '../helpers/pki.js';
import { freePort, startRedisFromFile, useAclRedis } from '../helpers/redis-server.js';
import { runCli } from '../helpers/cli.js';
import { tempDir, writeJson } from '../helpers/files.js';

const PREFIX = 'acltest';

describe('redis ACL users', () => {
  const pki = usePki({ brokers: ['b1'] });
  const ctx = useAclRedis({ prefix: PREFIX, gatewayIds: ['gwa', 'gwb'] });
  const { as, password } = ctx;

  /** ACL LOG entries (denials) of anyone but the admin. */
  async function denials(): Promise<string[]> {
    const entries = (await ctx.admin.call('ACL', 'LOG', '1000')) as unknown[][];
    return entries
      .map((e) => {
        const f = new Map<string, unknown>();
        for (let i = 0; i + 1 < e.length; i += 2) f.set(String(e[i]), e[i + 1]);
        return `${String(f.get('username'))}: ${String(f.get('reason'))} ${String(f.get('object'))}`;
      })
      .filter((line) => !line.startsWith(`${ADMIN_USER}:`));
  }

  test('password files are mode 0600; the ACL file holds hashes, never passwords', () => {
    const text = readFileSync(ctx.acl.aclFile, 'utf8');
    assert.deepEqual(Object.keys(ctx.acl.passwordFiles).sort(), [
      ADMIN_USER,
      DEFAULT_WORKER_USER,
      gatewayUser('gwa'),
      gatewayUser('gwb'),
    ]);
    for (const [user, file] of Object.entries(ctx.acl.passwordFiles)) {
      assert.equal(statSync(file).mode & 0o777, 0o600, `${user}'s password file mode`);
      assert.ok(password(user).length >= 40, `${user}'s password is long`);
      assert.ok(!text.includes(password(user)), `${user}'s password is not in the ACL file`);
    }
    assert.equal(statSync(ctx.acl.aclFile).mode & 0o777, 0o600);
  });

  test('rendering again keeps every existing password', () => {
    const before = Object.fromEntries(Object.keys(ctx.acl.passwordFiles).map((u) => [u, password(u)]));
    const again = writeAcl(dirname(ctx.acl.aclFile), { prefix: PREFIX, gatewayIds: ['gwa', 'gwb'] });
    assert.deepEqual(again.written, [], 'nothing changed, so nothing is rewritten');
    for (const [user, pw] of Object.entries(before)) assert.equal(password(user), pw);
  });

  test('without a password nothing works: the default user is off', async () => {
    const anon = ctx.anonymous();
    await assert.rejects(anon.get(`${PREFIX}:gw-gwa:id`), /NOAUTH|NOPERM/);
  });

  test('a gateway user cannot administer Redis or touch another gateway', async () => {
    const gw = as(gatewayUser('gwa'));
    const loaded = (lua: string) => ctx.admin.script('LOAD', lua) as Promise<string>;
    const attempts: [string, () => Promise<unknown>][] = [
      ['FLUSHALL', () => gw.flushall()],
      ['FLUSHDB', () => gw.flushdb()],
      ['CONFIG GET *', () => gw.config('GET', '*')],
      ['CONFIG SET', () => gw.call('CONFIG', 'SET', 'appendonly', 'yes')],
      ['KEYS *', () => gw.keys('*')],
      ['SCAN', () => gw.scan('0')],
      ['INFO', () => gw.info()],
      ['ACL WHOAMI', () => gw.call('ACL', 'WHOAMI')],
      ['ACL LIST', () => gw.call('ACL', 'LIST')],
      ['ACL SETUSER', () => gw.call('ACL', 'SETUSER', gatewayUser('gwa'), '+@all')],
      ['DEBUG SLEEP', () => gw.call('DEBUG', 'SLEEP', '0')],
      ['SHUTDOWN', () => gw.call('SHUTDOWN', 'NOSAVE')],
      ['MONITOR', () => gw.call('MONITOR')],
      ['CLIENT LIST', () => gw.call('CLIENT', 'LIST')],
      ['CLIENT KILL', () => gw.call('CLIENT', 'KILL', 'TYPE', 'normal')],
      ['SUBSCRIBE', () => gw.call('PUBLISH', 'x', 'y')],
      ['MODULE', () => gw.call('MODULE', 'LIST')],
      ['read gwb job', () => gw.hgetall(`${PREFIX}:gw-gwb:1`)],
      ['read gwb wait list', () => gw.lrange(`${PREFIX}:gw-gwb:wait`, 0, -1)],
      ['write gwb wait list', () => gw.lpush(`${PREFIX}:gw-gwb:wait`, 'x')],
      ['read gwb replies', () => gw.xread('STREAMS', `${PREFIX}:gw-gwb:reply:x`, '0-0')],
      ['trim gwb replies', () => gw.xtrim(`${PREFIX}:gw-gwb:reply:x`, 'MINID', '9-0')],
      ['delete gwb keys', () => gw.del(`${PREFIX}:gw-gwb:meta`)],
      ['key outside the prefix', () => gw.set('other', 'x')],
      // No Lua of its own: a busy loop would stall every gateway queued on this Redis.
      ['EVAL', () => gw.eval('return 1', 0)],
      ['EVAL_RO', () => gw.call('EVAL_RO', 'return 1', '0')],
      ['SCRIPT LOAD', () => gw.script('LOAD', 'return 1')],
      [
        'FUNCTION LOAD',
        () => gw.call('FUNCTION', 'LOAD', '#!lua name=x\nredis.register_function("f", function() end)'),
      ],
      ['FCALL', () => gw.call('FCALL', 'f', '0')],
      // Loaded scripts (the broker loads BullMQ's) still run under the caller's ACL.
      [
        'script touching gwb',
        async () => gw.evalsha(await loaded(`return redis.call('GET', KEYS[1])`), 1, `${PREFIX}:gw-gwb:id`),
      ],
      [
        'script with a command the user lacks',
        async () => gw.evalsha(await loaded('return redis.call("FLUSHALL")'), 0),
      ],
    ];
    for (const [what, attempt] of attempts) {
      // Inside a script Redis words the same refusal differently.
      const refusal = what.startsWith('script') ? /NOPERM|The user executing the script can't/ : /NOPERM/;
      await assert.rejects(attempt(), refusal, `${what} must be refused`);
    }
    assert.equal(await ctx.admin.ping(), 'PONG', 'the server is still up');
    // Its own keys it can use (the same user, the same connection).
    await gw.hset(`${PREFIX}:gw-gwa:probe`, 'a', '1');
    assert.equal(await ctx.admin.hget(`${PREFIX}:gw-gwa:probe`, 'a'), '1');
    await ctx.admin.del(`${PREFIX}:gw-gwa:probe`);
  });

  test('the real gateways and a broker run as their users without a single denial', async (t) => {
    await ctx.admin.call('ACL', 'LOG', 'RESET');
    const { url: dbUrl, schema } = await useTestSchema(t);
    const core = await startCore(testCoreConfig(pki(), { url: dbUrl, schema }), silentLogger());
    t.after(() => core.close());
    const endpoint = { host: '127.0.0.1', port: ctx.redis.port, prefix: PREFIX };
    const broker = startTestBroker(
      t,
      brokerConfigDoc(pki(), {
        prefix: PREFIX,
        corePort: core.address.port,
        gateways: ['gwa', 'gwb'],
        extra: {
          redis: {
            ...endpoint,
            username: DEFAULT_WORKER_USER,
            passwordFile: ctx.acl.passwordFiles[DEFAULT_WORKER_USER],
          },
        },
      }),
    );
    const urls: string[] = [];
    for (const id of ['gwa', 'gwb']) {
      const { url } = await startTestGateway(t, {
        prefix: PREFIX,
        id,
        overrides: {
          redis: {
            ...endpoint,
            username: gatewayUser(id),
            passwordFile: ctx.acl.passwordFiles[gatewayUser(id)],
          },
        },
      });
      await untilReady(url);
      urls.push(url);
    }
    for (const url of urls) {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${url}/notes`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ title: `note ${i}` }),
        });
        assert.equal(res.status, 201, await res.text());
      }
      // A keyed request reads its job back (in-flight check), twice: the second is a replay.
      for (let i = 0; i < 2; i++) {
        const keyed = await fetch(`${url}/notes`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': 'acl-key' },
          body: JSON.stringify({ title: 'keyed' }),
        });
        assert.equal(keyed.status, 201, await keyed.text());
      }
      // Refused by the broker's schema check: another reply path.
      const bad = await fetch(`${url}/notes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ nope: true }),
      });
      assert.equal(bad.status, 400);
    }
    // Long enough for stalled-job checks and lock renewals to have run as the worker user.
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(broker.workers.get('gwa')?.counts.answered, 5);
    assert.equal(broker.workers.get('gwb')?.counts.answered, 5);
    assert.deepEqual(await denials(), []);
  });

  test('`nonstop redis-acl` renders a Redis per gateway from a broker config, and redis-server runs it', async (t) => {
    const out = tempDir(t);
    const [eastPort, westPort] = [await freePort(), await freePort()];
    const config = writeJson(
      out,
      'broker.json',
      brokerConfigDoc(pki(), {
        prefix: 'rendered',
        corePort: 1,
        gateways: ['east', 'west'],
        extra: {
          redis: { prefix: 'rendered', username: 'brokers' },
          gateways: [
            { id: 'east', redis: { port: eastPort } },
            { id: 'west', redis: { port: westPort, username: 'west-worker' } },
          ],
        },
      }),
    );
    const run = await runCli(['redis-acl', '--config', config, '--out', join(out, 'redis')]);
    assert.equal(run.code, 0, run.stderr);
    const east = readFileSync(join(out, 'redis', 'east', 'users.acl'), 'utf8');
    assert.match(east, /^user nonstop-gw-east on #[0-9a-f]{64} resetkeys ~rendered:gw-east:\* /m);
    assert.match(
      east,
      /^user brokers on #[0-9a-f]{64} resetkeys ~rendered:gw-east:\* ~rendered:acme-relayed:gw-east resetchannels /m,
    );
    assert.doesNotMatch(east, /west/, "east's Redis knows nothing of west");
    const west = readFileSync(join(out, 'redis', 'west', 'users.acl'), 'utf8');
    assert.match(west, /^user west-worker on #[0-9a-f]{64} resetkeys ~rendered:gw-west:\* /m);
    assert.match(
      readFileSync(join(out, 'redis', 'west', 'redis.conf'), 'utf8'),
      new RegExp(`^port ${westPort}$`, 'm'),
    );
    // Each Redis's unit drop-in, with the config's (default) budget, and printed as written.
    const unit = readFileSync(join(out, 'redis', 'west', 'unit.conf'), 'utf8');
    assert.match(unit, /^\[Service\]$/m);
    assert.match(unit, /^LimitCORE=0$/m);
    assert.match(unit, /^MemoryMax=576M$/m);
    assert.match(unit, new RegExp(`^CPUWeight=${REDIS_CPU_WEIGHT}$`, 'm'));
    assert.match(unit, new RegExp(`^CPUQuota=${REDIS_CPU_QUOTA_PERCENT}%$`, 'm'));
    assert.match(run.stdout, /^wrote .*\/west\/unit\.conf$/m);
    const server = await startRedisFromFile(join(out, 'redis', 'east', 'redis.conf'), eastPort);
    t.after(() => server.stop());
    const pw = readFileSync(join(out, 'redis', 'east', 'nonstop-gw-east.password'), 'utf8').trim();
    const client = server.connect('nonstop-gw-east', pw);
    t.after(() => client.disconnect());
    await client.hset('rendered:gw-east:meta', 'x', '1');
    await assert.rejects(client.hset('rendered:gw-west:meta', 'x', '1'), /NOPERM/);
    // Running it again changes nothing and writes nothing.
    const again = await runCli(['redis-acl', '--config', config, '--out', join(out, 'redis')]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.trim(), '');
    // Two gateways on one port is refused, with the field to fix.
    const shared = writeJson(
      out,
      'shared.json',
      brokerConfigDoc(pki(), { prefix: 'rendered', corePort: 1, gateways: ['east', 'west'] }),
    );
    const bad = await runCli(['redis-acl', '--config', shared, '--out', join(out, 'x')]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /gateways\[\]\.redis\.port/);
  });
});
