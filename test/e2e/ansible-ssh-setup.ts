// What an operator has before the first run, for the over-SSH provisioning test: the vault's
// secrets (encrypted), an admin key pair, and hosts with an `admin` user that logs in with that
// key and has passwordless sudo (as a cloud image's first user has).
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../world/world.js';
import { run } from './rootfs.js';

export type Role = 'gateway' | 'broker' | 'core';

export interface OperatorSecrets {
  /** secrets.json, encrypted with ansible-vault. */
  readonly file: string;
  readonly vaultPassword: string;
  /** The admin's private key file, and its public key line. */
  readonly adminKey: string;
  readonly adminPublicKey: string;
}

export async function makeSecrets(dir: string): Promise<OperatorSecrets> {
  const made = await run(join(packageRoot(), 'ansible/bin/make-secrets.sh'), [
    '--out',
    join(dir, 'secrets'),
    '--gateways',
    'gw1',
    '--brokers',
    'broker1',
  ]);
  assert.equal(made.code, 0, made.stderr);
  const file = made.stdout.trim();
  const vaultPassword = join(dir, 'vault-password');
  writeFileSync(vaultPassword, 'nonstop-test\n', { mode: 0o600 });
  const encrypted = await run('ansible-vault', ['encrypt', '--vault-password-file', vaultPassword, file]);
  assert.equal(encrypted.code, 0, encrypted.stderr);
  const adminKey = join(dir, 'admin_ed25519');
  const keygen = await run('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    'admin@nonstop-test',
    '-f',
    adminKey,
  ]);
  assert.equal(keygen.code, 0, keygen.stderr);
  return { file, vaultPassword, adminKey, adminPublicKey: readFileSync(`${adminKey}.pub`, 'utf8').trim() };
}

/** Adds user `admin` to an unbooted tree: the key in authorized_keys, sudo without a password. */
export async function admitAdmin(root: string, publicKey: string): Promise<void> {
  const add = await run('chroot', [
    root,
    'useradd',
    '--create-home',
    '--shell',
    '/bin/bash',
    '--user-group',
    'admin',
  ]);
  assert.equal(add.code, 0, add.stderr);
  const ssh = join(root, 'home/admin/.ssh');
  mkdirSync(ssh, { mode: 0o700 });
  writeFileSync(join(ssh, 'authorized_keys'), `${publicKey}\n`, { mode: 0o600 });
  const own = await run('chroot', [root, 'chown', '-R', 'admin:admin', '/home/admin/.ssh']);
  assert.equal(own.code, 0, own.stderr);
  const sudoers = join(root, 'etc/sudoers.d/admin');
  writeFileSync(sudoers, 'admin ALL=(ALL:ALL) NOPASSWD: ALL\n');
  chmodSync(sudoers, 0o440);
  const check = await run('chroot', [root, 'visudo', '-cf', '/etc/sudoers.d/admin']);
  assert.equal(check.code, 0, check.stdout + check.stderr);
}
