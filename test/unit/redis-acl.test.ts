// The ACL command lists against the installed BullMQ: every command its Lua scripts can call
// (in any branch) must be allowed, or a job would fail in production on a path no
// integration test took. Fails when a BullMQ upgrade needs more.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import {
  aclUsers,
  GATEWAY_SCRIPT_COMMANDS,
  passwordHashes,
  renderAclFile,
  WORKER_SCRIPT_COMMANDS,
} from '../../broker/redis-acl.js';

const scriptsDir = join(dirname(createRequire(import.meta.url).resolve('bullmq')), 'scripts');

/** Redis commands a BullMQ script names: rcall('X'…), redis.call("X"…) and 'X' held in a variable. */
function scriptCommands(file: string): Set<string> {
  const text = readFileSync(join(scriptsDir, file), 'utf8');
  const found = new Set<string>();
  for (const m of text.matchAll(/(?:rcall|redis\.p?call)\(\s*["']([A-Za-z]+)["']/g))
    found.add(m[1]!.toLowerCase());
  // Commands chosen at run time: `local pushCmd = lifo and 'RPUSH' or 'LPUSH'`, `command = "HSCAN"`.
  for (const m of text.matchAll(/(?:Cmd|[cC]ommand)\s*=\s*([^\n]+)/g)) {
    for (const q of m[1]!.matchAll(/["']([A-Z]+)["']/g)) found.add(q[1]!.toLowerCase());
  }
  return found;
}

const scripts = readdirSync(scriptsDir).filter((f) => /^[a-zA-Z]+-\d+\.js$/.test(f));

test('the installed BullMQ has scripts to check', () => {
  assert.ok(scripts.length > 20, `found ${scripts.length} scripts in ${scriptsDir}`);
  assert.ok(scripts.some((f) => f.startsWith('addStandardJob-')));
});

test("the gateway user may run every command of Queue.add's script", () => {
  const needed = new Set(
    scripts.filter((f) => f.startsWith('addStandardJob-')).flatMap((f) => [...scriptCommands(f)]),
  );
  const missing = [...needed].filter((c) => !GATEWAY_SCRIPT_COMMANDS.includes(c));
  assert.deepEqual(missing, [], 'add these to GATEWAY_SCRIPT_COMMANDS (after checking what they do)');
});

test('the worker user may run every command of every BullMQ script', () => {
  const needed = new Set(scripts.flatMap((f) => [...scriptCommands(f)]));
  const missing = [...needed].filter((c) => !WORKER_SCRIPT_COMMANDS.includes(c));
  assert.deepEqual(missing, [], 'add these to WORKER_SCRIPT_COMMANDS (after checking what they do)');
});

test('the ACL file switches the default user off and confines each gateway to its keys', () => {
  const text = renderAclFile(aclUsers({ prefix: 'ns', gatewayIds: ['a', 'a-b'] }, (u) => `pw-${u}`));
  const lines = text.trim().split('\n');
  assert.equal(lines[0], 'user default off resetpass nocommands resetkeys resetchannels');
  const gwA = lines.find((l) => l.startsWith('user nonstop-gw-a '))!;
  // Its ACME inbox it may read only (%R~): brokers write it.
  assert.match(gwA, / resetkeys ~ns:gw-a:\* %R~ns:acme-relayed:gw-a resetchannels -@all /);
  assert.doesNotMatch(gwA, /~ns:gw-a-b/);
  assert.doesNotMatch(gwA, /\+@|\+info|\+keys|\+flushall|\+config|\+acl/);
  const worker = lines.find((l) => l.startsWith('user nonstop-broker '))!;
  assert.match(worker, / ~ns:gw-a:\* ~ns:acme-relayed:gw-a ~ns:gw-a-b:\* ~ns:acme-relayed:gw-a-b /);
  assert.ok(!text.includes('pw-'), 'passwords appear only hashed');
});

test('during a rotation a user holds its previous password too, hashed, current first', () => {
  const sha = (p: string) => createHash('sha256').update(p).digest('hex');
  const users = aclUsers(
    { prefix: 'ns', gatewayIds: ['a'] },
    (u) => `pw-${u}`,
    (u) => (u === 'nonstop-gw-a' ? 'old-pw' : undefined),
  );
  const lines = renderAclFile(users).trim().split('\n');
  const gwA = lines.find((l) => l.startsWith('user nonstop-gw-a '))!;
  assert.ok(
    gwA.startsWith(`user nonstop-gw-a on #${sha('pw-nonstop-gw-a')} #${sha('old-pw')} resetkeys `),
    gwA,
  );
  const worker = lines.find((l) => l.startsWith('user nonstop-broker '))!;
  assert.equal(worker.match(/#[0-9a-f]{64}/g)?.length, 1, 'the others keep one password');
  assert.deepEqual(passwordHashes(users.find((u) => u.name === 'nonstop-gw-a')!), [
    sha('pw-nonstop-gw-a'),
    sha('old-pw'),
  ]);
  // A previous password equal to the current one is no second password.
  const same = aclUsers(
    { prefix: 'ns', gatewayIds: ['a'] },
    (u) => `pw-${u}`,
    (u) => `pw-${u}`,
  );
  assert.ok(same.every((u) => u.previousPassword === undefined));
});
