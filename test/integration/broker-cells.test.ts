// `nonstop broker` serves each gateway from a process of its own (broker/cells.ts): a cell that
// dies is started again and the others go on untouched; the status endpoint shows every cell;
// SIGTERM stops them all.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Queue } from 'bullmq';
import type { CellStatus } from '../../broker/status-server.js';
import { queueName } from '../../lib/envelope.js';
import { brokerConfigDoc, startCliBroker } from '../helpers/broker.js';
import { finished, startCli } from '../helpers/cli.js';
import { tempDir, writeJson } from '../helpers/files.js';
import { usePki } from '../helpers/pki.js';
import { testRedis } from '../helpers/redis.js';
import { until } from '../helpers/until.js';

interface Status {
  readonly cells: CellStatus[];
  readonly jobs: Record<string, Record<string, number>>;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('a broker cell per gateway', () => {
  const pki = usePki({ brokers: ['b1'] });

  test('a cell killed is started again; the other cell and its work go on; SIGTERM stops all', async (t) => {
    const redis = testRedis(t);
    const { child, done, base } = await startCliBroker(t, pki(), {
      prefix: redis.prefix,
      gateways: ['gw1', 'gw2'],
      extra: { cells: { maxHeapMb: 96 } },
    });
    const status = async () => (await (await fetch(`${base}/status`)).json()) as Status;
    const cell = (s: Status, id: string) => s.cells.find((c) => c.gatewayId === id)!;
    const running = async (ready: (s: Status) => boolean) => {
      let last: Status | undefined;
      await until('the cells', async () => ready((last = await status())), 20_000, 50).catch((err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(last)}`);
      });
      return last!;
    };

    const first = await running((s) => s.cells.length === 2 && s.cells.every((c) => c.state === 'running'));
    const [gw1, gw2] = [cell(first, 'gw1'), cell(first, 'gw2')];
    assert.notEqual(gw1.pid, gw2.pid);
    for (const c of [gw1, gw2]) {
      assert.notEqual(c.pid, child.pid, 'the gateway runs in a process of its own');
      // Its heap limit, and nothing of another gateway: it was started for its gateway only.
      const argv = readFileSync(`/proc/${c.pid}/cmdline`, 'utf8').split('\0');
      assert.ok(argv.includes('--max-old-space-size=96'), argv.join(' '));
      assert.deepEqual(argv.slice(argv.indexOf('--gateway'), argv.indexOf('--gateway') + 2), [
        '--gateway',
        c.gatewayId,
      ]);
    }
    assert.deepEqual(first.jobs.gw2, { answered: 0, invalid: 0, tampered: 0, expired: 0 });

    process.kill(gw1.pid!, 'SIGKILL');
    // gw2's cell works on while gw1's is down: a job that is no envelope is taken and refused.
    const queue = new Queue(queueName('gw2'), { connection: redis.client, prefix: redis.prefix });
    t.after(() => queue.close());
    await queue.add('forged', { not: 'an envelope' });
    const later = await running(
      (s) =>
        cell(s, 'gw1').restarts === 1 && cell(s, 'gw1').state === 'running' && s.jobs.gw2?.tampered === 1,
    );
    assert.equal(cell(later, 'gw1').lastExit, 'SIGKILL');
    assert.notEqual(cell(later, 'gw1').pid, gw1.pid);
    assert.equal(cell(later, 'gw2').pid, gw2.pid, "gw2's cell was never touched");
    assert.equal(cell(later, 'gw2').restarts, 0);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^nonstop_broker_cell_restarts_total\{gateway="gw1"\} 1$/m);
    assert.match(metrics, /^nonstop_broker_cell_up\{gateway="gw2"\} 1$/m);

    child.kill('SIGTERM');
    const exit = await done;
    assert.equal(exit.code, 0, exit.stderr);
    for (const pid of [cell(later, 'gw1').pid!, gw2.pid!])
      assert.equal(alive(pid), false, `cell ${pid} stopped`);
  });

  test('cells whose broker was killed exit at once (they would hold their tunnels against its restart)', async (t) => {
    const redis = testRedis(t);
    const { child, done, base } = await startCliBroker(t, pki(), {
      prefix: redis.prefix,
      gateways: ['gw1', 'gw2'],
    });
    let pids: number[] = [];
    await until('both cells running', async () => {
      const s = (await (await fetch(`${base}/status`)).json()) as Status;
      pids = s.cells.flatMap((c) => (c.state === 'running' && c.pid !== null ? [c.pid] : []));
      return pids.length === 2;
    });
    t.after(() => pids.filter(alive).forEach((pid) => process.kill(pid, 'SIGKILL')));
    child.kill('SIGKILL');
    await done;
    await until('the orphaned cells to exit', () => !pids.some(alive), 5000);
  });

  test('--gateway must name a gateway of the config', async (t) => {
    const dir = tempDir(t);
    const file = writeJson(
      dir,
      'broker.json',
      brokerConfigDoc(pki(), { prefix: 'x', corePort: 1, gateways: ['gw1'] }),
    );
    const child = startCli(['broker', '--config', file, '--gateway', 'gw9']);
    child.stdin.end();
    const exit = await finished(child);
    assert.equal(exit.code, 2);
    assert.match(exit.stderr, /gateway "gw9" is not in .*broker\.json \(its gateways: gw1\)/);
  });
});
