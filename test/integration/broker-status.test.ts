// `nonstop broker` with a status section: a loopback HTTP endpoint with /status and /metrics,
// closed with the broker on SIGTERM.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { brokerConfigDoc } from '../helpers/broker.js';
import { finished, startCli, waitForLogLine } from '../helpers/cli.js';
import { tempDir, writeJson } from '../helpers/files.js';
import { usePki } from '../helpers/pki.js';
import { testRedis } from '../helpers/redis.js';

describe('broker status endpoint', () => {
  const pki = usePki({ brokers: ['b1'] });

  test('serves /status and /metrics on loopback and stops with the broker', async (t) => {
    const redis = testRedis(t);
    const dir = tempDir(t);
    const file = writeJson(
      dir,
      'broker.json',
      brokerConfigDoc(pki(), {
        prefix: redis.prefix,
        corePort: 1,
        gateways: ['gw1', 'gw2'],
        extra: { logLevel: 'info', status: { port: 0 } },
      }),
    );
    const child = startCli(['broker', '--config', file]);
    child.stdin.end();
    t.after(() => child.kill('SIGKILL'));
    const done = finished(child);
    const line = await waitForLogLine(child, (l) => l.msg === 'status endpoint listening');
    const address = line.address as { address: string; port: number };
    assert.equal(address.address, '127.0.0.1');
    const base = `http://127.0.0.1:${address.port}`;

    const status = (await (await fetch(`${base}/status`)).json()) as Record<string, unknown>;
    assert.deepEqual(status, {
      brokerId: 'b1',
      tunnels: [],
      jobs: {
        gw1: { answered: 0, invalid: 0, tampered: 0, expired: 0 },
        gw2: { answered: 0, invalid: 0, tampered: 0, expired: 0 },
      },
    });
    const metrics = await fetch(`${base}/metrics`);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(await metrics.text(), /^nonstop_jobs_total\{gateway="gw2",outcome="tampered"\} 0$/m);
    assert.equal((await fetch(`${base}/status`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${base}/other`)).status, 404);

    child.kill('SIGTERM');
    const exit = await done;
    assert.equal(exit.code, 0, exit.stderr);
    await assert.rejects(fetch(`${base}/status`));
  });
});
