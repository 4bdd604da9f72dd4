// `nonstop broker` with a status section: a loopback HTTP endpoint with /status, /metrics and a
// page, refused under any other Host, closed with the broker on SIGTERM; `nonstop status` reads it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { request } from 'node:http';
import type { CellStatus } from '../../broker/status-server.js';
import { queueName } from '../../lib/envelope.js';
import { startCliBroker } from '../helpers/broker.js';
import { runCli } from '../helpers/cli.js';
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
        queues: {
          gw1: { waiting: 0, active: 0, delayed: 0 },
          gw2: { waiting: 0, active: 0, delayed: 0 },
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
    assert.match(text, /^nonstop_broker_jobs_total\{gateway="gw2",outcome="tampered"\} 0$/m);
    assert.match(text, /^nonstop_broker_acme_answers_total\{gateway="gw1",outcome="refused"\} 0$/m);
    assert.equal((await fetch(`${base}/status`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${base}/other`)).status, 404);

    // A job waiting in gw1's queue (delayed an hour, so the worker leaves it) shows within a sample.
    const delayed = `${redis.prefix}:${queueName('gw1')}:delayed`;
    await redis.client.zadd(delayed, (Date.now() + 3_600_000) * 4096, 'later');
    await until("gw1's delayed job counted", async () => {
      const queues = (await get()).queues as Record<string, { delayed: number }>;
      return queues.gw1?.delayed === 1 && queues.gw2?.delayed === 0;
    });
    assert.match(
      await (await fetch(`${base}/metrics`)).text(),
      /^nonstop_broker_queue_jobs\{gateway="gw1",state="delayed"\} 1$/m,
    );
    await redis.client.del(delayed);

    // The page, with a CSP that allows its own files only; and nothing under a Host not loopback
    // (a page the admin has open elsewhere cannot rebind its name to this port).
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
    assert.match(await page.text(), /<script src="\/status\.js" defer><\/script>/);
    assert.equal(
      (await fetch(`${base}/status.js`)).headers.get('content-type'),
      'text/javascript; charset=utf-8',
    );
    assert.equal(await statusWithHost(base, 'attacker.example'), 421);
    assert.equal(await statusWithHost(base, `localhost:${address.port}`), 200);

    const cli = await runCli(['status', '--url', base]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /^broker b1 \(http:\/\/127\.0\.0\.1:\d+\): all up$/m);
    assert.match(cli.stdout, /^ {2}gw2 +running +direct +0 +0 +0 +0 +0 +0 +0$/m);

    const stopping = Date.now();
    child.kill('SIGTERM');
    const exit = await done;
    t.diagnostic(`SIGTERM to exit: ${Date.now() - stopping} ms`);
    assert.equal(exit.code, 0, exit.stderr);
    await assert.rejects(fetch(`${base}/status`));
  });
});

/** GET /status with a Host header of the caller's choosing (fetch sets its own). */
function statusWithHost(base: string, host: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/status`, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', reject);
    req.end();
  });
}
