// A gateway with two Redis endpoints (two brokers, each with its own Redis, as with two
// tunnels): requests are served while either is up; when the one in use dies, the next
// request already goes to the other; with both gone the gateway answers 503 at once.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startCore } from '../../core/server.js';
import { silentLogger } from '../../lib/log.js';
import { brokerConfigDoc, spawnBroker, untilWorker } from '../helpers/broker.js';
import { testCoreConfig } from '../helpers/core.js';
import { tempDir } from '../helpers/files.js';
import { startTestGateway, untilReady } from '../helpers/gateway.js';
import { useTestSchema } from '../helpers/pg.js';
import { usePki } from '../helpers/pki.js';
import { startPrivateRedis } from '../helpers/redis-server.js';

const PREFIX = 'endpoints';

function post(url: string, title: string): Promise<Response> {
  return fetch(`${url}/notes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title }),
  });
}

describe('gateway over several Redis endpoints', () => {
  const pki = usePki({ brokers: ['b1', 'b2'] });

  test('moves to the other endpoint when the one in use dies, and answers 503 when both are gone', async (t) => {
    const dir = tempDir(t);
    const { url: dbUrl, schema } = await useTestSchema(t);
    const core = await startCore(testCoreConfig(pki(), { url: dbUrl, schema }), silentLogger());
    t.after(() => core.close());
    const redisA = await startPrivateRedis();
    t.after(() => redisA.stop());
    const redisB = await startPrivateRedis();
    t.after(() => redisB.stop());
    for (const [id, redis] of [
      ['b1', redisA],
      ['b2', redisB],
    ] as const) {
      spawnBroker(
        t,
        dir,
        brokerConfigDoc(pki(), {
          id,
          prefix: PREFIX,
          corePort: core.address.port,
          extra: { redis: { host: '127.0.0.1', port: redis.port, prefix: PREFIX } },
        }),
      );
    }
    const { url } = await startTestGateway(t, {
      prefix: PREFIX,
      overrides: {
        redis: {
          prefix: PREFIX,
          endpoints: [{ port: redisA.port }, { host: '127.0.0.1', port: redisB.port }],
        },
      },
    });
    await untilReady(url);

    const a = redisA.connect();
    t.after(() => a.disconnect());
    const b = redisB.connect();
    t.after(() => b.disconnect());
    await untilWorker(a, PREFIX);
    await untilWorker(b, PREFIX);
    const created = await post(url, 'first');
    assert.equal(created.status, 201, await created.text());
    // The job went through the first endpoint: only A's queue has events.
    const events = `${PREFIX}:gw-gw1:events`;
    assert.ok(Number(await a.xlen(events)) > 0);
    assert.equal(Number(await b.xlen(events)), 0);

    await redisA.stop();
    for (let i = 0; i < 5; i++) {
      const res = await post(url, `after A died ${i}`);
      assert.equal(res.status, 201, `request ${i} after A died: ${res.status}`);
    }
    assert.equal((await fetch(`${url}/readyz`)).status, 200, 'ready while one endpoint is up');
    assert.ok(Number(await b.xlen(events)) > 0, 'B took over');

    b.disconnect();
    await redisB.stop();
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 503);
    const started = Date.now();
    const refused = await post(url, 'nobody there');
    assert.equal(refused.status, 503);
    assert.ok(refused.headers.get('retry-after'));
    assert.ok(Date.now() - started < 1000, 'answered at once, not at the deadline');
  });
});
