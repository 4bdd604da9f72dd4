// The gateway's `redis` section: one endpoint as before, or several (one per broker tunnel).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../../config/load.js';
import { redisEndpoints } from '../../config/schemas/gateway.js';

const base = { kind: 'gateway', id: 'gw1', routes: 'routes.json' };

test('a single redis object works as before', () => {
  const config = validateConfig('gateway', '/etc/nonstop/gateway.json', {
    ...base,
    redis: { port: 7001, username: 'nonstop-gw-gw1', passwordFile: 'gw1.password' },
  });
  assert.deepEqual(redisEndpoints(config.redis), [
    {
      host: '127.0.0.1',
      port: 7001,
      prefix: 'nonstop',
      username: 'nonstop-gw-gw1',
      passwordFile: '/etc/nonstop/gw1.password',
    },
  ]);
});

test('endpoints: one connection config each, sharing the user, with their own password files if given', () => {
  const config = validateConfig('gateway', '/etc/nonstop/gateway.json', {
    ...base,
    redis: {
      username: 'nonstop-gw-gw1',
      passwordFile: 'gw1.password',
      endpoints: [{ port: 7001 }, { port: 7002, passwordFile: 'b2/gw1.password' }],
    },
  });
  assert.deepEqual(
    redisEndpoints(config.redis).map((e) => [e.host, e.port, e.username, e.passwordFile]),
    [
      ['127.0.0.1', 7001, 'nonstop-gw-gw1', '/etc/nonstop/gw1.password'],
      ['127.0.0.1', 7002, 'nonstop-gw-gw1', '/etc/nonstop/b2/gw1.password'],
    ],
  );
  assert.throws(
    () => validateConfig('gateway', 'g.json', { ...base, redis: { endpoints: [] } }),
    /endpoints/,
  );
  assert.throws(
    () => validateConfig('gateway', 'g.json', { ...base, redis: { endpoints: [{ host: 'x' }] } }),
    /port/,
  );
});
