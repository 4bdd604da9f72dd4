// `nonstop check-config` and the CLI's usage errors, as a user runs them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { repoRoot, tempDir, writeJson } from '../helpers/files.js';

const CLI = fileURLToPath(new URL('../../cli/index.js', import.meta.url));
const run = promisify(execFile);

async function nonstop(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('check-config accepts the examples and names the file and field of a broken one', async (t) => {
  const examples = ['gateway', 'broker', 'core', 'routes'].map((k) =>
    join(repoRoot, 'config/examples', `${k}.json`),
  );
  const good = await nonstop('check-config', ...examples);
  assert.equal(good.code, 0);
  assert.equal(good.stdout.match(/: ok \(/g)?.length, 4);

  const broken = writeJson(tempDir(t), 'gw.json', {
    kind: 'gateway',
    id: 'gw1',
    routes: 'r.json',
    replyTimeoutMs: -5,
  });
  const bad = await nonstop('check-config', examples[0]!, broken);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /gw\.json: field "replyTimeoutMs" must be >= 100/);
});

test('a daemon refuses to start on a broken config, with the reason, before doing anything', async (t) => {
  const broken = writeJson(tempDir(t), 'broker.json', { kind: 'broker', id: 'b1' });
  const res = await nonstop('broker', '--config', broken);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /broker\.json: field "routes" is required/);
  assert.match(res.stderr, /broker\.json: field "gateways" is required/);
});

test('unknown commands and options are usage errors (exit 2); --help explains', async () => {
  assert.equal((await nonstop('frobnicate')).code, 2);
  const unknownOption = await nonstop('gateway', '--konfig', 'x');
  assert.equal(unknownOption.code, 2);
  assert.match(unknownOption.stderr, /Unknown option '--konfig'/);
  const help = await nonstop('--help');
  assert.equal(help.code, 0);
  for (const cmd of ['gateway', 'broker', 'core', 'local', 'keygen', 'check-config']) {
    assert.match(help.stdout, new RegExp(`\\n  ${cmd} `));
  }
});
