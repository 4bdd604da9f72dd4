// A throwaway PKI for tests: generated once per test file into a fresh temp dir (generating
// keys is slow enough to share), removed after the file's tests. `issueClientCert` makes certs
// `nonstop keygen` never would, to test that the core refuses them.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { promisify } from 'node:util';
import { generatePki, type CertFiles, type Pki, type PkiOptions } from '../../lib/pki.js';

export type { CertFiles, Pki };

const run = promisify(execFile);

export interface TestPki extends Pki {
  /** PEM contents of a key/cert pair, ready for `tls.connect` / `https.request`. */
  pem(files: CertFiles): { cert: Buffer; key: Buffer };
  remove(): Promise<void>;
}

export async function createTestPki(options: Omit<PkiOptions, 'dir'> = {}): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'nonstop-test-pki-'));
  try {
    const pki = await generatePki({ brokers: ['b1'], gateways: ['gw1'], ...options, dir });
    return {
      ...pki,
      pem: (files) => ({ cert: readFileSync(files.cert), key: readFileSync(files.key) }),
      remove: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Registers `before`/`after` hooks that make one PKI for the enclosing suite and remove it.
 * Call the returned function inside tests (or later hooks) to get it. Call `usePki` inside a
 * `describe`: Node 20 does not wait for one file-level `before` hook before starting the next.
 */
export function usePki(options: Omit<PkiOptions, 'dir'> = {}): () => TestPki {
  let pki: TestPki | undefined;
  before(async () => {
    pki = await createTestPki(options);
  });
  after(async () => {
    await pki?.remove();
  });
  return () => {
    if (pki === undefined) throw new Error('usePki(): the PKI is made in a before hook; use it inside tests');
    return pki;
  };
}

/** A client cert with any subject, signed by `ca`; written next to the PKI's other files. */
export async function issueClientCert(
  pki: Pki,
  ca: CertFiles,
  name: string,
  subject: string,
): Promise<CertFiles> {
  const files = { cert: join(pki.dir, `${name}.crt`), key: join(pki.dir, `${name}.key`) };
  const ext = join(pki.dir, `${name}.cnf`);
  await writeFile(ext, '[req]\ndistinguished_name = dn\n[dn]\n[ext]\nextendedKeyUsage = clientAuth\n');
  await run('openssl', [
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    files.key,
  ]);
  const csr = join(pki.dir, `${name}.csr`);
  await run('openssl', ['req', '-new', '-key', files.key, '-subj', subject, '-config', ext, '-out', csr]);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-set_serial',
    '0x1234',
    '-days',
    '2',
    '-extfile',
    ext,
    '-extensions',
    'ext',
    '-out',
    files.cert,
  ]);
  return files;
}
