// `nonstop local --once`: the README's run command, from keys to sample requests, in its own folder.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/files.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../cli/index.js', import.meta.url));

test('nonstop local --once brings up the three roles and every sample answers as expected', async (t) => {
  const dir = tempDir(t);
  const { stdout } = await run(process.execPath, [CLI, 'local', '--once', '--dir', dir], { timeout: 90_000 });
  assert.match(stdout, /✔ create a note: POST \/notes/);
  assert.doesNotMatch(stdout, /✘/);
  // Invalid requests stop at the broker; the core never sees them.
  assert.match(
    stdout,
    /invalid body[^\n]*\n[^\n]*→ 400[^\n]*\n[^\n]*gateway: answered[^\n]*\n[^\n]*broker: invalid request refused[^\n]*\n[^\n]*core: never saw it/,
  );
  assert.match(stdout, /unknown route[^\n]*\n[^\n]*→ 404[^\n]*\n[^\n]*nothing was queued/);
  for (const role of ['core', 'broker', 'gateway']) assert.ok(existsSync(join(dir, 'logs', `${role}.log`)));
  // No Redis was named: it ran its own, which wrote nothing to disk and is gone with the run.
  const port = /redis {4}127\.0\.0\.1:(\d+) \(its own, nothing on disk\)/.exec(stdout)?.[1];
  assert.ok(port !== undefined, stdout);
  assert.equal(existsSync(join(dir, 'dump.rdb')), false);
  const refused = await new Promise<boolean>((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(true));
  });
  assert.ok(refused, `its Redis still answers on ${port} after the run`);
});
