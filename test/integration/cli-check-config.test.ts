// `nonstop check-config` and the CLI's usage errors, as a user runs them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { repoRoot, tempDir, writeJson } from '../helpers/files.js';

const CLI = fileURLToPath(new URL('../../cli/index.js', import.meta.url));
const run = promisify(execFile);

type Result = { code: number; stdout: string; stderr: string };

const nonstop = (...args: string[]): Promise<Result> => nonstopWith({}, ...args);

async function nonstopWith(env: Record<string, string>, ...args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
    });
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

test('check-config and the gateway refuse static mounts that start would refuse, naming the file', async (t) => {
  const dir = tempDir(t);
  const routes = join(repoRoot, 'config/examples/routes.json');
  const good = writeJson(dir, 'gw-ok.json', {
    kind: 'gateway',
    id: 'gw1',
    routes,
    static: [{ path: '/assets/', dir }],
  });
  assert.equal((await nonstop('check-config', good)).code, 0);
  const broken = writeJson(dir, 'gw-static.json', {
    kind: 'gateway',
    id: 'gw1',
    routes,
    static: [
      { path: '/assets/', dir: join(dir, 'missing') },
      { path: '/notes/', dir },
    ],
  });
  const checked = await nonstop('check-config', broken);
  assert.equal(checked.code, 1);
  assert.match(checked.stderr, /gw-static\.json: field "static\[0\]\.dir" must be an existing folder/);
  assert.match(
    checked.stderr,
    /gw-static\.json: field "static\[1\]\.path" "\/notes\/" would shadow route "notes\.get"/,
  );
  const started = await nonstop('gateway', '--config', broken);
  assert.equal(started.code, 1);
  assert.match(started.stderr, /gw-static\.json: field "static\[0\]\.dir" must be an existing folder/);
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

test('--version prints the package version; every daemon takes -c', async (t) => {
  const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const res = await nonstop(flag);
    assert.equal(res.code, 0);
    assert.equal(res.stdout, `nonstop ${version}\n`);
  }
  const missing = join(tempDir(t), 'missing.json');
  for (const daemon of ['gateway', 'broker', 'core', 'guard']) {
    const res = await nonstop(daemon, '-c', missing);
    assert.equal(res.code, 1, `${daemon} -c: ${res.stderr}`);
    assert.match(res.stderr, /missing\.json: cannot read config file \(ENOENT\)/, daemon);
  }
});

test('a daemon started with an unknown NONSTOP_LOG_LEVEL fails at start, naming the variable', async () => {
  const file = join(repoRoot, 'config/examples/core.json');
  const res = await nonstopWith({ NONSTOP_LOG_LEVEL: 'loud' }, 'core', '-c', file);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /NONSTOP_LOG_LEVEL must be one of/);
});

test('schemas --check: 0 for the repository copies; names a stale or missing file and exits 1', async (t) => {
  assert.equal((await nonstop('schemas', '--check', '--out', join(repoRoot, 'config/schemas'))).code, 0);
  const dir = tempDir(t);
  assert.equal((await nonstop('schemas', '--out', dir)).code, 0);
  writeFileSync(join(dir, 'broker.json'), '{}\n');
  rmSync(join(dir, 'core.json'));
  const res = await nonstop('schemas', '--check', '--out', dir);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /broker\.json: missing or stale/);
  assert.match(res.stderr, /core\.json: missing or stale/);
  assert.doesNotMatch(res.stderr, /gateway\.json/);
});
