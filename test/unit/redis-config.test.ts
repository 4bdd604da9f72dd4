// The redis.conf of a gateway's own Redis: every bound is there and derived from the limits,
// nothing persists, and `nonstop redis-acl`'s plans refuse what would share or expose a Redis.
import { MAX_REPLY_BYTES, REPLY_BATCH } from '../../lib/envelope.js';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  redisServerPlans,
  renderRedisConfig,
  writeRedisServers,
  type RedisServerPlan,
} from '../../broker/redis-config.js';
import { redisBudget, renderRedisUnit } from '../../broker/redis-unit.js';
import { validateConfig } from '../../config/load.js';
import { gatewayRedis, REDIS_CPU_QUOTA_PERCENT, REDIS_CPU_WEIGHT } from '../../config/schemas/broker.js';

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
    cpuWeight: REDIS_CPU_WEIGHT,
    cpuQuotaPercent: REDIS_CPU_QUOTA_PERCENT,
  });
});

test('a gateway Redis off loopback is refused', () => {
  const config = validateConfig('broker', 'b.json', {
    ...base,
    gateways: [{ id: 'a', redis: { host: '10.0.0.5', port: 6401 } }],
  });
  assert.throws(() => redisServerPlans(config), /gateways\[a\]\.redis\.host is 10\.0\.0\.5/);
});

test('the unit drop-in: no core dumps, a memory ceiling above maxmemory, the CPU budget', () => {
  assert.equal(
    renderRedisUnit('gw1', plan.limits),
    [
      "# The unit of gateway gw1's Redis on this broker (rendered by nonstop redis-acl; do not edit).",
      '[Service]',
      'LimitCORE=0',
      // 2 × 128 MiB + 64 MiB
      'MemoryMax=320M',
      'MemorySwapMax=0',
      'CPUWeight=30',
      'CPUQuota=80%',
      '',
    ].join('\n'),
  );
  assert.deepEqual(redisBudget(plan.limits), {
    cpuWeight: 30,
    cpuQuotaPercent: 80,
    memoryMaxBytes: 320 * MB,
  });
  // No quota: the directive is there and empty, so that no earlier drop-in's quota survives.
  const unlimited = renderRedisUnit('gw1', { ...plan.limits, cpuQuotaPercent: null });
  assert.match(unlimited, /^CPUQuota=$/m);
  assert.equal(redisBudget({ ...plan.limits, cpuQuotaPercent: null }).cpuQuotaPercent, null);
});

test('the CPU budget of the config: defaults below the broker, bad values refused by field', () => {
  const gateways = [{ id: 'a' }];
  const config = validateConfig('broker', 'b.json', { ...base, gateways });
  assert.ok(config.redisServer.cpuWeight < 100, "below systemd's default weight, the broker's");
  assert.equal(config.redisServer.cpuQuotaPercent, REDIS_CPU_QUOTA_PERCENT);
  const none = validateConfig('broker', 'b.json', {
    ...base,
    gateways,
    redisServer: { cpuQuotaPercent: null },
  });
  assert.equal(none.redisServer.cpuQuotaPercent, null);
  const refused: [Record<string, unknown>, RegExp][] = [
    [{ cpuWeight: 0 }, /b\.json: field "redisServer\.cpuWeight" must be >= 1/],
    [{ cpuWeight: 100 }, /field "redisServer\.cpuWeight" must be <= 99/],
    [{ cpuWeight: 12.5 }, /field "redisServer\.cpuWeight" must be integer/],
    [{ cpuWeight: '50' }, /field "redisServer\.cpuWeight" must be integer/],
    [{ cpuQuotaPercent: 0 }, /field "redisServer\.cpuQuotaPercent" must be >= 5/],
    [{ cpuQuotaPercent: 5000 }, /field "redisServer\.cpuQuotaPercent" must be <= 1000/],
    [{ cpuQuotaPercent: '50%' }, /field "redisServer\.cpuQuotaPercent" must be integer,null/],
    [{ cpuShares: 512 }, /redisServer/],
  ];
  for (const [redisServer, message] of refused)
    assert.throws(() => validateConfig('broker', 'b.json', { ...base, gateways, redisServer }), message);
});

test('nonstop redis-acl writes each unit drop-in once, and again only when the budget changes', () => {
  const out = mkdtempSync(join(tmpdir(), 'nonstop-unit-'));
  try {
    const gateways = [{ gatewayId: 'gw1', port: 6401, prefix: 'nonstop', workerUser: 'nonstop-broker' }];
    const [first] = writeRedisServers(out, gateways, plan.limits, { systemd: true });
    assert.equal(first!.unitFile, join(out, 'gw1', 'unit.conf'));
    assert.ok(first!.written.includes(first!.unitFile));
    assert.equal(readFileSync(first!.unitFile, 'utf8'), renderRedisUnit('gw1', plan.limits));
    assert.deepEqual(first!.budget, redisBudget(plan.limits));
    const [again] = writeRedisServers(out, gateways, plan.limits, { systemd: true });
    assert.deepEqual(again!.written, []);
    const [changed] = writeRedisServers(out, gateways, { ...plan.limits, cpuWeight: 10 }, { systemd: true });
    assert.deepEqual(changed!.written, [first!.unitFile]);
    assert.match(readFileSync(first!.unitFile, 'utf8'), /^CPUWeight=10$/m);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
