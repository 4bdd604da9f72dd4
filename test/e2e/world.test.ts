// The test world itself: hosts can reach each other over their segments, and every namespace
// and process is gone afterwards — after close(), after SIGTERM, and (next run) after SIGKILL.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { packageRoot, removeStragglers, World, worldSkipReason, type Host } from '../../world/world.js';
import { AGENT } from './gateway.js';

const skip = worldSkipReason();
const namespaces = (prefix: string) =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith(prefix));

/** Whether a pid is a live process (not gone, not a zombie waiting to be reaped). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function startDemo(): Promise<{ prefix: string; child: ReturnType<typeof spawn> }> {
  const child = spawn(process.execPath, [join(packageRoot(), 'dist/test/world/demo.js')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout }).once('line', resolve),
  );
  return { prefix: (JSON.parse(line) as { prefix: string }).prefix, child };
}

describe('test world', { skip }, () => {
  test('hosts on a segment reach each other; private is separate; close removes everything', async () => {
    const world = await World.create();
    try {
      const inet = await world.addHost('inet', { public: 1 });
      const broker = await world.addHost('broker', { public: 1, private: 1 });
      const core = await world.addHost('core', { private: 1 });
      assert.match(inet.ip4, /^198\.18\./);
      assert.match(core.ip4, /^198\.19\./);
      const agent = broker.node(AGENT, ['http', '8080']);
      await agent.waitForLine((l) => l === 'ready');
      await core.node(AGENT, ['http', '8080']).waitForLine((l) => l === 'ready');
      // The world's processes dump no core (soft and hard limit 0), and the pid the world stops
      // them by is the process itself, not a wrapper.
      assert.match(readFileSync(`/proc/${agent.pid}/limits`, 'utf8'), /^Max core file size +0 +0 +bytes/m);
      assert.ok(readFileSync(`/proc/${agent.pid}/cmdline`, 'utf8').includes(AGENT));
      const probe = async (from: Host, to: string) =>
        (await from.runNode(AGENT, ['probe', to, '8080', '--timeout', '500'])).stdout.trim();
      assert.equal(await probe(inet, broker.ip4), 'open');
      assert.equal(await probe(inet, broker.ip6), 'open');
      assert.equal(await probe(broker, core.ip4), 'open');
      assert.equal(await probe(broker, core.ip6), 'open');
      assert.notEqual(await probe(inet, core.ip4), 'open', 'inet has no way to the private segment');
      assert.equal(namespaces(world.prefix).length, 5, 'three hosts and two switches');
      // A process that outlives its parent (like an sshd session) is not tracked by pid...
      const orphan = Number((await core.check('sh', ['-c', 'sleep 600 >/dev/null 2>&1 & echo $!'])).trim());
      assert.equal(running(orphan), true);
      await world.close();
      // ...but it lived in the world's namespace, so it goes with it.
      assert.equal(running(orphan), false);
    } finally {
      await world.close();
    }
    assert.deepEqual(namespaces(world.prefix), []);
  });

  test('an interrupted run (SIGTERM) removes its namespaces and stops its processes', async () => {
    const { prefix, child } = await startDemo();
    assert.equal(namespaces(prefix).length, 4);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    assert.deepEqual(namespaces(prefix), []);
  });

  test('a killed run (SIGKILL) leaves stragglers that the next world removes', async () => {
    const { prefix, child } = await startDemo();
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.equal(namespaces(prefix).length, 4, 'SIGKILL cannot be caught');
    const inside = execFileSync('ip', ['netns', 'pids', `${prefix}-inet`], { encoding: 'utf8' }).trim();
    assert.match(inside, /^\d+$/, 'the sleep it started is still running');
    assert.ok(
      readdirSync(tmpdir()).some((n) => n.startsWith(`${prefix}-`)),
      'its temp dir too',
    );
    removeStragglers();
    assert.deepEqual(namespaces(prefix), []);
    assert.equal(
      readdirSync(tmpdir()).some((n) => n.startsWith(`${prefix}-`)),
      false,
    );
    assert.equal(running(Number(inside)), false, 'and it was stopped');
  });
});
