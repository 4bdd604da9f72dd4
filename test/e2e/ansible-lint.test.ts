// The playbook and roles pass ansible-lint's production profile and Ansible's syntax check.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { packageRoot } from '../../world/world.js';
import { rootfsSkipReason, run } from './rootfs.js';

const ANSIBLE_DIR = join(packageRoot(), 'ansible');
const env = { ...process.env, ANSIBLE_NOCOLOR: '1', NO_COLOR: '1', ANSIBLE_FORCE_COLOR: '0' };

describe('ansible lint', { skip: rootfsSkipReason(['ansible-playbook', 'ansible-lint']) }, () => {
  test('ansible-lint --profile production finds nothing', async () => {
    const r = await run('ansible-lint', ['--profile', 'production', '--nocolor', '-p'], {
      cwd: ANSIBLE_DIR,
      env,
    });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(`${r.stdout}${r.stderr}`, /Passed with production profile: 0 failure\(s\), 0 warning\(s\)/);
  });

  test('ansible-playbook --syntax-check accepts site.yml with the example inventory', async () => {
    const r = await run('ansible-playbook', ['--syntax-check', '-i', 'inventory/example', 'site.yml'], {
      cwd: ANSIBLE_DIR,
      env,
    });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /playbook: site\.yml/);
  });
});
