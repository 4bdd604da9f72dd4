// The knock CLI without a network: knock-secret's two halves fit together, and --dry-run shows
// the sequence the guard expects.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { parseGuardConfig, parseKnockConfig } from '../../config/knock.js';
import { SequenceCatalog } from '../../knock/catalog.js';
import { deriveSequence, timeStep } from '../../knock/rotating.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', '..', 'cli', 'index.js');
const dir = mkdtempSync(join(tmpdir(), 'nonstop-knock-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('knock-secret prints a guard entry and a profile that agree; --dry-run sends what the guard expects', async () => {
  const { stdout } = await run(process.execPath, [
    CLI,
    'knock-secret',
    '--gateway',
    'gw1',
    '--client',
    'broker1',
    '--host',
    '198.18.0.10',
    '--step-seconds',
    '3600',
  ]);
  const out = JSON.parse(stdout) as { guardClient: object; profileName: string; profile: object };
  assert.equal(out.profileName, 'gw1');
  const guard = parseGuardConfig('guard.json', {
    kind: 'guard',
    gateway: 'gw1',
    rotating: { stepSeconds: 3600, clients: [out.guardClient] },
  });
  const profiles = parseKnockConfig('knock.json', { kind: 'knock', profiles: { gw1: out.profile } });
  const file = join(dir, 'knock.json');
  writeFileSync(file, JSON.stringify(profiles));

  const now = Date.now();
  const dry = await run(process.execPath, [
    CLI,
    'knock',
    '--profiles',
    file,
    '--profile',
    'gw1',
    '--dry-run',
  ]);
  const client = { gateway: 'gw1', client: 'broker1', secret: guard.rotating.clients[0]!.secret };
  const expected = deriveSequence(client, timeStep(now, 3600), guard.rotating);
  assert.equal(dry.stdout.trim(), `knock 198.18.0.10: ${expected.map((s) => `${s.port}:tcp`).join(' ')}`);
  // And the guard's catalog has a sequence starting with that first port, for that client.
  const starts = new SequenceCatalog(guard).startingWith(expected[0]!, now);
  assert.ok(
    starts.some((s) => s.name === 'broker1' && s.steps.every((st, i) => st.port === expected[i]!.port)),
  );
});

test('knock: usage errors name the problem', async () => {
  const fail = async (args: string[]) => {
    try {
      await run(process.execPath, [CLI, 'knock', ...args]);
    } catch (err) {
      return err as { code: number; stderr: string };
    }
    return assert.fail('expected failure');
  };
  let e = await fail(['198.18.0.10']);
  assert.equal(e.code, 2);
  assert.match(e.stderr, /exactly one of --profile NAME, --sequence SEQ or --spa --spa-keys FILE/);
  e = await fail(['198.18.0.10', '--sequence', '7000,70000']);
  assert.match(e.stderr, /port 70000 is outside 1-65535/);
  e = await fail(['--sequence', '7000']);
  assert.match(e.stderr, /needs a GATEWAY/);
  const dry = await run(process.execPath, [
    CLI,
    'knock',
    '198.18.0.10',
    '--sequence',
    '7000,8000:udp',
    '--then-ssh',
    '--ssh-port',
    '2222',
    '--dry-run',
    '--',
    'uptime',
  ]);
  assert.equal(dry.stdout, 'knock 198.18.0.10: 7000:tcp 8000:udp\nthen: ssh -p 2222 198.18.0.10 uptime\n');
});

test('spa-keygen: its key file and guard entry fit together, through render guard and knock --spa', async () => {
  const { stdout } = await run(process.execPath, [CLI, 'spa-keygen', '--client', 'broker1']);
  const made = JSON.parse(stdout) as {
    keyFile: string;
    guardClient: { name: string; key: string; hmacKey: string };
  };
  assert.match(made.keyFile, /^KEY_BASE64: [A-Za-z0-9+/]{43}=\nHMAC_KEY_BASE64: [A-Za-z0-9+/]{86}==\n$/);
  assert.equal(made.guardClient.name, 'broker1');
  assert.ok(made.keyFile.includes(made.guardClient.key) && made.keyFile.includes(made.guardClient.hmacKey));
  // What Ansible renders from the entry is a guard config with that SPA client.
  const rendered = execFileSync(process.execPath, [CLI, 'render', 'guard', '--input', '-'], {
    input: JSON.stringify({ role: 'gateway', id: 'gw1', spaClients: [made.guardClient], spaPort: 62202 }),
  }).toString();
  const guard = parseGuardConfig('guard.json', JSON.parse(rendered));
  assert.equal(guard.spa?.port, 62202);
  assert.deepEqual(guard.spa?.clients, [{ ...made.guardClient, openFor: 'source' }]);
  const keys = join(dir, 'broker1.spa');
  writeFileSync(keys, made.keyFile, { mode: 0o600 });
  const dry = await run(process.execPath, [
    CLI,
    'knock',
    '198.18.0.10',
    '--spa',
    '--spa-keys',
    keys,
    '--spa-port',
    '62202',
    '--dry-run',
  ]);
  assert.match(dry.stdout, /knock 198\.18\.0\.10: spa to 62202\/udp asking tcp\/22 for the sending address/);
  // The file is written once, mode 0600, and never over an existing one.
  const out = join(dir, 'new.spa');
  await run(process.execPath, [CLI, 'spa-keygen', '--out', out]);
  assert.equal(statSync(out).mode & 0o777, 0o600);
  await assert.rejects(
    run(process.execPath, [CLI, 'spa-keygen', '--out', out]),
    /exists; keys are never written over/,
  );
});
