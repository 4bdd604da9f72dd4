// The redis.conf of a gateway's own Redis: every bound is there and derived from the limits,
// nothing persists, and `nonstop redis-acl`'s plans refuse what would share or expose a Redis.
import { MAX_REPLY_BYTES, REPLY_BATCH } from '../../lib/envelope.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redisServerPlans, renderRedisConfig, type RedisServerPlan } from '../../broker/redis-config.js';
import { validateConfig } from '../../config/load.js';
import { gatewayRedis } from '../../config/schemas/broker.js';

const MB = 1024 * 1024;
const plan: RedisServerPlan = {
  gatewayId: 'gw1',
  port: 6401,
  aclFile: '/etc/nonstop/redis/gw1/users.acl',
  dir: '/etc/nonstop/redis/gw1',
  limits: {
    maxMemoryMb: 128,
    maxClients: 40,
    maxJobBytes: 16 * MB,
    idleTimeoutSeconds: 300,
    cpuWeight: 30,
    cpuQuotaPercent: 80,
  },
};

function directives(text: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [name, ...rest] = line.split(' ');
    map.set(name === 'client-output-buffer-limit' ? `${name} ${rest[0]}` : name!, rest);
  }
  return map;
}

test('every bound is set, from the limits', () => {
  const d = directives(renderRedisConfig(plan));
  const get = (name: string) => d.get(name)?.join(' ');
  assert.equal(get('bind'), '127.0.0.1 -::1');
  assert.equal(get('protected-mode'), 'yes');
  assert.equal(get('port'), '6401');
  assert.equal(get('maxmemory'), '128mb');
  assert.equal(get('maxmemory-policy'), 'noeviction');
  assert.equal(get('maxmemory-clients'), String(64 * MB));
  assert.equal(get('maxclients'), '40');
  assert.equal(get('proto-max-bulk-len'), String(16 * MB));
  assert.equal(get('client-query-buffer-limit'), String(17 * MB), 'a whole job fits in the query buffer');
  assert.equal(get('client-output-buffer-limit normal'), `normal ${80 * MB} ${40 * MB} 10`);
  assert.equal(get('client-output-buffer-limit pubsub'), 'pubsub 1mb 1mb 0');
  assert.equal(get('timeout'), '300');
  assert.equal(get('aclfile'), plan.aclFile);
  for (const lazy of [
    'lazyfree-lazy-user-del',
    'lazyfree-lazy-user-flush',
    'lazyfree-lazy-eviction',
    'lazyfree-lazy-expire',
    'lazyfree-lazy-server-del',
  ])
    assert.equal(get(lazy), 'yes', lazy);
  assert.equal(get('enable-debug-command'), 'no');
  assert.equal(get('enable-module-command'), 'no');
  assert.equal(get('enable-protected-configs'), 'no');
});

test("the output buffer holds a gateway's whole batch of the largest replies, and two of the largest jobs", () => {
  for (const maxJobBytes of [MB, 16 * MB, 64 * MB]) {
    const d = directives(renderRedisConfig({ ...plan, limits: { ...plan.limits, maxJobBytes } }));
    const hard = Number(d.get('client-output-buffer-limit normal')?.[1]);
    assert.ok(hard >= REPLY_BATCH * MAX_REPLY_BYTES, `${hard} for a batch of replies`);
    assert.ok(hard >= 2 * maxJobBytes, `${hard} for two jobs of ${maxJobBytes}`);
  }
});

test('nothing persists: no RDB, no AOF, no log file, a pid file only under systemd', () => {
  const text = renderRedisConfig(plan);
  const d = directives(text);
  assert.deepEqual(d.get('save'), ['""']);
  assert.deepEqual(d.get('appendonly'), ['no']);
  assert.deepEqual(d.get('logfile'), ['""']);
  assert.deepEqual(d.get('dir'), [plan.dir]);
  assert.equal(d.has('pidfile'), false);
  assert.doesNotMatch(text, /appendfsync|dbfilename|appendfilename/);
  const systemd = directives(
    renderRedisConfig({ ...plan, pidFile: '/run/redis-nonstop-gw1/redis-server.pid' }),
  );
  assert.deepEqual(systemd.get('pidfile'), ['/run/redis-nonstop-gw1/redis-server.pid']);
  assert.deepEqual(systemd.get('daemonize'), ['no']);
});

test('an idle timeout shorter than two heartbeats is refused', () => {
  assert.throws(
    () => renderRedisConfig({ ...plan, limits: { ...plan.limits, idleTimeoutSeconds: 100 } }),
    /idleTimeoutSeconds must be at least 120/,
  );
});

const base = {
  kind: 'broker',
  id: 'b1',
  routes: 'routes.json',
  redis: { port: 6379, username: 'worker', passwordFile: '/top.password' },
  core: { url: 'https://core:1', ca: 'ca', cert: 'c', key: 'k' },
};

test("each gateway's Redis falls back to the top-level redis, field by field", () => {
  const config = validateConfig('broker', 'b.json', {
    ...base,
    gateways: [{ id: 'a' }, { id: 'b', redis: { port: 6402, passwordFile: '/b.password' } }],
  });
  assert.deepEqual(gatewayRedis(config, 'a'), {
    host: '127.0.0.1',
    port: 6379,
    prefix: 'nonstop',
    username: 'worker',
    passwordFile: '/top.password',
  });
  assert.deepEqual(gatewayRedis(config, 'b'), {
    host: '127.0.0.1',
    port: 6402,
    prefix: 'nonstop',
    username: 'worker',
    passwordFile: '/b.password',
  });
  assert.deepEqual(config.redisServer, {
    maxMemoryMb: 256,
    maxClients: 32,
    maxJobBytes: 4 * MB,
    idleTimeoutSeconds: 300,
  });
});

test('a gateway Redis off loopback is refused', () => {
  const config = validateConfig('broker', 'b.json', {
    ...base,
    gateways: [{ id: 'a', redis: { host: '10.0.0.5', port: 6401 } }],
  });
  assert.throws(() => redisServerPlans(config), /gateways\[a\]\.redis\.host is 10\.0\.0\.5/);
});
