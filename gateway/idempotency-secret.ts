// The deployment's idempotency secret (`idempotency.secretFile`): one line of base64, at least
// 32 random bytes, the same file on every gateway of the deployment, readable by the gateway
// alone. Written by `nonstop keygen`, ansible/bin/make-secrets.sh and the world.
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { errors } from '../lib/errors.js';

export const MIN_SECRET_BYTES = 32;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const FIELD = 'idempotency.secretFile';

/** A fresh secret in the file format: base64 of 32 random bytes and a newline. */
export function newIdempotencySecret(): string {
  return `${randomBytes(MIN_SECRET_BYTES).toString('base64')}\n`;
}

/** Writes a fresh secret, mode 0600; with `keep`, an existing file is left as it is. */
export function writeIdempotencySecret(file: string, options: { keep?: boolean } = {}): boolean {
  try {
    writeFileSync(file, newIdempotencySecret(), { mode: 0o600, flag: options.keep === true ? 'wx' : 'w' });
    return true;
  } catch (err) {
    if (options.keep === true && (err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/**
 * Reads and checks the secret file. Refuses (CONFIG_INVALID, naming the field) a file that
 * others may read or anyone but its owner may write (0600, or 0640 for the gateway's group, is
 * right), and one that is not base64 of at least 32 bytes.
 */
export function readIdempotencySecret(file: string): Buffer {
  let text: string;
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    throw errors.CONFIG_INVALID(`${FIELD}: cannot read ${file} (${reason})`, undefined, { cause: err });
  }
  if ((mode & 0o037) !== 0) {
    throw errors.CONFIG_INVALID(
      `${FIELD}: ${file} has mode 0${mode.toString(8)}; it must be readable by the gateway alone (0600, or 0640 with the gateway's group)`,
    );
  }
  const line = text.trim();
  const secret = BASE64.test(line) ? Buffer.from(line, 'base64') : Buffer.alloc(0);
  if (secret.length < MIN_SECRET_BYTES) {
    throw errors.CONFIG_INVALID(
      `${FIELD}: ${file} must hold base64 of at least ${MIN_SECRET_BYTES} random bytes (for example \`openssl rand -base64 32\`)`,
    );
  }
  return secret;
}
