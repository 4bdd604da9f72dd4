// One idempotency secret per test process, as one deployment has one: every test gateway reads
// the same file, and tests derive the ids those gateways give keyed requests.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IdempotencyScope } from '../../gateway/idempotency-key.js';

export const TEST_IDEMPOTENCY_SECRET = randomBytes(32);
export const testIdempotency = new IdempotencyScope(TEST_IDEMPOTENCY_SECRET);

let file: string | undefined;

/** The secret as a file (mode 0600), made on first use and removed when the process exits. */
export function testIdempotencySecretFile(): string {
  if (file === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'nonstop-idempotency-'));
    file = join(dir, 'idempotency.secret');
    writeFileSync(file, `${TEST_IDEMPOTENCY_SECRET.toString('base64')}\n`, { mode: 0o600 });
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return file;
}

/** The request id a test gateway derives for this key (and identity headers, none by default). */
export function keyedId(key: string, headers: IncomingHttpHeaders = {}): string {
  return testIdempotency.keyed(key, headers).id;
}
