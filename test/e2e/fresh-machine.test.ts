// The README's commands on a fresh machine: Debian 12 as mmdebstrap makes it (minbase: no
// Redis, no PostgreSQL, no compiler, no git) with only Node.js 20 and npm copied in, where this
// machine has them, and the repository cloned into it. Each command runs in a container on that
// tree (systemd-nspawn, not booted), which removes every process it started when it ends:
// - as root, `npm test -- integration/request-path`: the set-up installs the Debian and npm
//   packages and builds, then lint, format, and a test file that goes through the test run's
//   own Redis and PostgreSQL (gateway → Redis → broker → core → PostgreSQL). The rest of the
//   suite is the same code on the same packages, and runs on this machine's own tree;
// - as root, in a network of its own with CAP_NET_ADMIN, `npm start -- --smoke`: the whole
//   three-tier demo in network namespaces, every step checked;
// - as a user without root, in a clone of its own, `npm run local -- --once`.
// The machine's own network carries the downloads (Debian's mirror, the npm registry); the
// packages apt fetched are kept in a cache folder beside the images for the next run.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { packageRoot } from '../../world/world.js';
import { ContainerRun, type RunOptions } from './nspawn.js';
import { baseImage, CACHE_DIR, RootfsSet, rootfsSkipReason, run } from './rootfs.js';

const ROOT = packageRoot();
const log = (msg: string) => process.stderr.write(`# fresh-machine: ${msg}\n`);
/** A fresh Debian 12: its required packages, and the CA bundle every installed system has. */
const FRESH = { variant: 'minbase', packages: ['ca-certificates'] } as const;
const APT_CACHE = join(CACHE_DIR, 'apt-archives');
/** This machine's own certificate authorities (an egress proxy's, say), as its kind has them. */
const LOCAL_CAS = '/usr/local/share/ca-certificates';
const MILESTONE = /^(setup: |== |test services: |ℹ (tests|pass|fail) |✖ |smoke: |nonstop local: |npm error )/;

const skip =
  rootfsSkipReason(['mmdebstrap', 'systemd-nspawn', 'git']) ??
  (existsSync(join(ROOT, '.git')) ? undefined : 'needs the repository as a git clone (it clones it)');

/**
 * Node.js and npm as this machine has them: the binary, npm, the headers node-gyp builds native
 * addons against (npm's `nodedir`), and npm's global config, under the same prefix.
 */
function copyNode(root: string): void {
  const prefix = dirname(dirname(process.execPath));
  const copy = (rel: string) => {
    const from = join(prefix, rel);
    if (!existsSync(from)) return;
    mkdirSync(dirname(join(root, prefix, rel)), { recursive: true });
    cpSync(from, join(root, prefix, rel), { recursive: true, dereference: false });
  };
  for (const rel of ['bin/node', 'lib/node_modules/npm', 'include/node', 'etc/npmrc']) copy(rel);
  for (const cmd of ['npm', 'npx'])
    symlinkSync(`../lib/node_modules/npm/bin/${cmd}-cli.js`, join(root, prefix, 'bin', cmd));
}

async function clone(root: string, dir: string): Promise<void> {
  const r = await run('git', ['clone', '-q', '--no-hardlinks', ROOT, join(root, dir)]);
  assert.equal(r.code, 0, r.stderr);
}

describe("a fresh Debian 12 with only Node.js: the README's commands do all the set-up", { skip }, () => {
  let set: RootfsSet;
  let root: string;

  /** A command in the container; its output goes to this test's log as it comes. */
  const inContainer = async (
    name: string,
    script: string,
    options: Omit<RunOptions, 'timeoutMs' | 'onOutput'>,
  ) => {
    const started = Date.now();
    const r = await ContainerRun.run(name, root, ['/bin/sh', '-euc', script], {
      ...options,
      timeoutMs: 600_000,
      // The milestones as they come (apt's and npm's own lines are in the output on failure).
      onOutput: (chunk) => {
        for (const line of chunk.split('\n')) if (MILESTONE.test(line)) log(`${name}: ${line}`);
      },
    });
    log(`${name}: exit ${r.code} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(r.timedOut, false, `${name} did not end within 10 minutes:\n${r.stdout.slice(-8000)}`);
    return r;
  };

  before(
    async () => {
      set = new RootfsSet();
      const image = await baseImage(FRESH);
      log(`image ${image.path}${image.built ? ` built in ${(image.ms / 1000).toFixed(1)} s` : ' (cached)'}`);
      root = await set.unpack('fresh', image.path);
      copyNode(root);
      if (existsSync(LOCAL_CAS))
        for (const name of readdirSync(LOCAL_CAS)) cpSync(join(LOCAL_CAS, name), join(root, LOCAL_CAS, name));
      mkdirSync(join(APT_CACHE, 'partial'), { recursive: true });
      await clone(root, 'root/nonstop');
      const user = await run('chroot', [root, 'useradd', '--create-home', '--shell', '/bin/sh', 'dev']);
      assert.equal(user.code, 0, user.stderr);
      await clone(root, 'home/dev/nonstop');
      const own = await run('chroot', [root, 'chown', '-R', 'dev:dev', '/home/dev/nonstop']);
      assert.equal(own.code, 0, own.stderr);
      for (const missing of ['redis-server', 'postgres', 'g++', 'git'])
        assert.notEqual((await run('chroot', [root, 'sh', '-c', `command -v ${missing}`])).code, 0, missing);
    },
    { timeout: 300_000 },
  );
  after(() => set?.disposeSync());

  test(
    'as root: `npm test` installs what is missing and runs the tests on a Redis and a PostgreSQL of its own',
    { timeout: 660_000 },
    async () => {
      const r = await inContainer(
        'npm-test',
        'update-ca-certificates >/dev/null; cd /root/nonstop; npm test -- integration/request-path',
        { binds: [`${APT_CACHE}:/var/cache/apt/archives`], env: { CI: 'true' } },
      );
      assert.equal(r.code, 0, r.stdout.slice(-8000));
      // It was fresh: the set-up installed the servers and the compiler, and npm's packages.
      assert.match(r.stdout, /setup: installing Debian packages:.* g\+\+ .*redis-server .*postgresql/);
      assert.match(r.stdout, /setup: installing npm packages/);
      assert.match(r.stdout, /test services: Redis on 127\.0\.0\.1:\d+/);
      assert.match(r.stdout, /test services: PostgreSQL on 127\.0\.0\.1:\d+/);
      assert.match(r.stdout, /✔ request path/);
      assert.match(r.stdout, /ℹ fail 0/);
      assert.ok(Number(/ℹ pass (\d+)/.exec(r.stdout)?.[1]) >= 5, 'the request-path tests ran');
      // The native addon was built on the machine, against the headers copied with Node.
      assert.ok(existsSync(join(root, 'root/nonstop/node_modules/raw-socket/build/Release/raw.node')));
    },
  );

  test(
    'as root, in a network of its own: `npm start -- --smoke` brings the demo up and checks every step',
    { timeout: 660_000 },
    async () => {
      const r = await inContainer('npm-start', 'cd /root/nonstop; npm start -- --smoke', {
        privateNetwork: true,
        capabilities: ['CAP_NET_ADMIN'],
      });
      assert.equal(r.code, 0, r.stdout.slice(-8000));
      assert.match(r.stdout, /smoke: all \d+ checks passed/);
      assert.match(r.stdout, /nothing left behind/);
    },
  );

  test(
    'as a user without root: `npm run local -- --once` in a clone of its own',
    { timeout: 660_000 },
    async () => {
      const r = await inContainer('npm-run-local', 'cd /home/dev/nonstop; npm run local -- --once', {
        user: 'dev',
      });
      assert.equal(r.code, 0, r.stdout.slice(-8000));
      assert.match(r.stdout, /setup: installing npm packages/);
      assert.match(r.stdout, /✔ create a note: POST \/notes/);
      assert.doesNotMatch(r.stdout, /✘/);
      // Its files are the user's: nothing in the clone belongs to root.
      const foreign = await run('find', [
        join(root, 'home/dev/nonstop'),
        '-not',
        '-user',
        readUid(root, 'dev'),
      ]);
      assert.equal(foreign.stdout.trim(), '', 'files in the user clone that the user does not own');
    },
  );
});

/** A user's uid in the tree's /etc/passwd (the host may have no such user). */
function readUid(root: string, user: string): string {
  const line = readFileSync(join(root, 'etc/passwd'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  assert.ok(line, `${user} is not in ${root}/etc/passwd`);
  return line.split(':')[2] ?? '';
}
