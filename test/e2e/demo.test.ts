// `nonstop demo`: --smoke exits 0 after checking every step; the interactive run writes a
// topology other tools can drive, serves a request sent with the command it prints, and on
// SIGINT removes every namespace it made.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Topology } from '../../world/three-tier.js';
import { HostProcess, packageRoot, worldSkipReason } from '../../world/world.js';

const skip = worldSkipReason();
const CLI = join(packageRoot(), 'dist/cli/index.js');

function namespaces(prefix: string): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}

test('nonstop demo --smoke checks every step and exits 0', { skip, timeout: 240_000 }, async (t) => {
  const demo = new HostProcess(
    spawn(process.execPath, [CLI, 'demo', '--smoke'], { stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  const code = await demo.exited;
  const output = [...demo.lines, ...demo.stderrLines].join('\n');
  t.diagnostic(demo.lines.filter((l) => /bring-up|smoke:/.test(l)).join('\n'));
  assert.equal(code, 0, output);
  assert.match(output, /smoke: all \d+ checks passed/);
  assert.match(output, /nothing left behind/);
});

test(
  'nonstop demo stays up, writes its topology, and leaves nothing after SIGINT',
  { skip, timeout: 240_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'nonstop-demo-test-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'topology.json');
    const demo = new HostProcess(
      spawn(process.execPath, [CLI, 'demo', '--topology', file], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    t.after(() => demo.running && demo.child.kill('SIGKILL'));
    await demo.waitForLine((l) => l.startsWith('Press Ctrl-C'), 180_000);
    const topology = JSON.parse(readFileSync(file, 'utf8')) as Topology & {
      commands: Record<string, string>;
    };
    const roles = topology.hosts.map((h) => `${h.name}:${h.role}`).sort();
    assert.deepEqual(roles, [
      'b1:broker',
      'b2:broker',
      'core:core',
      'gw1:gateway',
      'gw2:gateway',
      'inet:internet',
    ]);
    const prefix = topology.hosts[0]!.namespace.replace(/-inet$/, '');
    assert.equal(namespaces(prefix).length, 8, 'six hosts and two switches');
    for (const h of topology.hosts) {
      const open = h.services.filter((s) => s.public).map((s) => s.port);
      assert.deepEqual(open, h.role === 'gateway' ? [80, 443] : [], h.name);
    }
    // The command it prints for the user's own request works as printed.
    const out = execFileSync('sh', ['-c', topology.commands.request!], { encoding: 'utf8' });
    assert.equal((JSON.parse(out) as { title?: string }).title, 'hello');

    demo.child.kill('SIGINT');
    assert.equal(await demo.exited, 0, demo.stderrLines.join('\n'));
    assert.ok(demo.lines.some((l) => l.includes('nothing left behind')));
    assert.deepEqual(namespaces(prefix), []);
  },
);
