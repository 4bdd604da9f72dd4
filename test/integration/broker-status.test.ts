// `nonstop broker` with a status section: a loopback HTTP endpoint with /status and /metrics,
// closed with the broker on SIGTERM.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CellStatus } from '../../broker/status-server.js';
import { startCliBroker } from '../helpers/broker.js';
import { usePki } from '../helpers/pki.js';
import { testRedis } from '../helpers/redis.js';
import { until } from '../helpers/until.js';

describe('broker status endpoint', () => {
  const pki = usePki({ brokers: ['b1'] });

  test('serves /status and /metrics on loopback and stops with the broker', async (t) => {
    const redis = testRedis(t);
    const { child, done, address, base } = await startCliBroker(t, pki(), {
      prefix: redis.prefix,
      gateways: ['gw1', 'gw2'],
    });
    assert.equal(address.address, '127.0.0.1');

    // Each gateway's cell reports once it is up.
    const get = async () => (await (await fetch(`${base}/status`)).json()) as Record<string, unknown>;
    let status = await get();
    await until('both cells running', async () => {
      status = await get();
      return (status.cells as CellStatus[]).every((c) => c.state === 'running');
    });
    assert.deepEqual(
      { ...status, cells: (status.cells as CellStatus[]).map((c) => [c.gatewayId, c.state, c.restarts]) },
      {
        brokerId: 'b1',
        tunnels: [],
        jobs: {
          gw1: { answered: 0, invalid: 0, tampered: 0, expired: 0 },
          gw2: { answered: 0, invalid: 0, tampered: 0, expired: 0 },
        },
        cells: [
          ['gw1', 'running', 0],
          ['gw2', 'running', 0],
        ],
        acme: { gw1: { relayed: 0, refused: 0 }, gw2: { relayed: 0, refused: 0 } },
      },
    );
    const metrics = await fetch(`${base}/metrics`);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await metrics.text();
    assert.match(text, /^nonstop_jobs_total\{gateway="gw2",outcome="tampered"\} 0$/m);
    assert.match(text, /^nonstop_acme_answers_total\{gateway="gw1",outcome="refused"\} 0$/m);
    assert.equal((await fetch(`${base}/status`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${base}/other`)).status, 404);

    const stopping = Date.now();
    child.kill('SIGTERM');
    const exit = await done;
    t.diagnostic(`SIGTERM to exit: ${Date.now() - stopping} ms`);
    assert.equal(exit.code, 0, exit.stderr);
    await assert.rejects(fetch(`${base}/status`));
  });
});
