// Keys and certificates for a nonstop deployment, made with the `openssl` CLI (no shell).
// Two separate CAs: the internal CA signs the core's server cert and the brokers' client certs
// (mutual TLS on the private network); the public CA signs gateway server certs, so a
// gateway's cert can never pass as a broker client cert. Private keys are written mode 0600
// and never logged.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ID_PATTERN } from '../config/schemas/common.js';
import { errors } from './errors.js';

export const BROKER_UNIT = 'nonstop-broker';
export const DEFAULT_CORE_NAMES: readonly string[] = ['core', 'localhost', '127.0.0.1'];
const GATEWAY_BASE_NAMES: readonly string[] = ['localhost', '127.0.0.1'];

export interface PkiOptions {
  /** Folder to write into; created if missing. */
  readonly dir: string;
  /** Broker ids; one client cert each. Default `["b1"]`. */
  readonly brokers?: readonly string[];
  /** Gateway ids; one server cert each, from the public CA. Default `["gw1"]`. */
  readonly gateways?: readonly string[];
  /** DNS names and IP addresses of the core's cert. Default core, localhost, 127.0.0.1. */
  readonly coreNames?: readonly string[];
  /** Extra DNS names and IPs of every gateway cert, besides localhost and 127.0.0.1. */
  readonly gatewayNames?: readonly string[];
  /** Validity of leaf certs in days (CAs get ten times as long). Default 825. */
  readonly days?: number;
  /** Replace existing files instead of keeping them. */
  readonly force?: boolean;
}

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface Pki {
  readonly dir: string;
  readonly ca: CertFiles;
  readonly core: CertFiles;
  readonly brokers: Readonly<Record<string, CertFiles>>;
  readonly publicCa: CertFiles;
  readonly gateways: Readonly<Record<string, CertFiles>>;
  /** Files written by this call (existing ones that were kept are not listed). */
  readonly written: readonly string[];
}

type Extensions = Readonly<Record<string, string>>;

const LEAF_BASE: Extensions = {
  basicConstraints: 'critical,CA:FALSE',
  keyUsage: 'critical,digitalSignature',
  subjectKeyIdentifier: 'hash',
  authorityKeyIdentifier: 'keyid',
};

const CA_EXTENSIONS: Extensions = {
  basicConstraints: 'critical,CA:TRUE,pathlen:0',
  keyUsage: 'critical,keyCertSign,cRLSign',
  subjectKeyIdentifier: 'hash',
};

export async function generatePki(options: PkiOptions): Promise<Pki> {
  const brokers = options.brokers ?? ['b1'];
  const gateways = options.gateways ?? ['gw1'];
  const coreNames = options.coreNames ?? DEFAULT_CORE_NAMES;
  const gatewayNames = [...new Set([...GATEWAY_BASE_NAMES, ...(options.gatewayNames ?? [])])];
  const days = options.days ?? 825;
  checkIds('broker', brokers);
  checkIds('gateway', gateways);
  checkNames('core', coreNames);
  checkNames('gateway', gatewayNames);
  if (!Number.isInteger(days) || days < 1) throw errors.PKI_FAILED(`days must be a positive integer`);

  await mkdir(options.dir, { recursive: true, mode: 0o755 });
  const work = await mkdtemp(join(tmpdir(), 'nonstop-pki-'));
  const issuer = new Issuer(options.dir, work, days, options.force === true);
  try {
    const ca = await issuer.authority('ca', 'nonstop internal CA');
    const core = await issuer.leaf('core', ca, '/CN=core/O=nonstop', {
      ...LEAF_BASE,
      extendedKeyUsage: 'serverAuth',
      subjectAltName: altNames(coreNames),
    });
    const brokerFiles: Record<string, CertFiles> = {};
    for (const id of brokers) {
      brokerFiles[id] = await issuer.leaf(`broker-${id}`, ca, `/CN=${id}/OU=${BROKER_UNIT}/O=nonstop`, {
        ...LEAF_BASE,
        extendedKeyUsage: 'clientAuth',
      });
    }
    const publicCa = await issuer.authority('public-ca', 'nonstop public CA');
    const gatewayFiles: Record<string, CertFiles> = {};
    for (const id of gateways) {
      gatewayFiles[id] = await issuer.leaf(`gateway-${id}`, publicCa, `/CN=${id}/O=nonstop`, {
        ...LEAF_BASE,
        extendedKeyUsage: 'serverAuth',
        subjectAltName: altNames(gatewayNames),
      });
    }
    return {
      dir: options.dir,
      ca,
      core,
      brokers: brokerFiles,
      publicCa,
      gateways: gatewayFiles,
      written: issuer.written,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

interface Authority extends CertFiles {
  /** True when the CA was made by this call: every cert it signs must then be made again. */
  readonly fresh: boolean;
}

/** Makes (or keeps) one key/cert pair at a time, remembering what it wrote. */
class Issuer {
  readonly written: string[] = [];

  constructor(
    private readonly dir: string,
    private readonly work: string,
    private readonly days: number,
    private readonly force: boolean,
  ) {}

  async authority(name: string, commonName: string): Promise<Authority> {
    const files = this.files(name);
    if (!this.force && (await exists(files))) return { ...files, fresh: false };
    await this.writeKey(files.key);
    const config = await this.config(name, CA_EXTENSIONS);
    const cert = await openssl(
      ['req', '-new', '-x509', '-key', files.key, '-subj', `/CN=${commonName}/O=nonstop`],
      ['-days', String(this.days * 10), '-sha256', '-config', config, '-extensions', 'ext'],
    );
    await this.writeFile(files.cert, cert, 0o644);
    return { ...files, fresh: true };
  }

  async leaf(name: string, ca: Authority, subject: string, extensions: Extensions): Promise<CertFiles> {
    const files = this.files(name);
    if (!this.force && !ca.fresh && (await exists(files))) return files;
    await this.writeKey(files.key);
    const config = await this.config(name, extensions);
    const csr = await openssl(['req', '-new', '-key', files.key, '-subj', subject, '-config', config]);
    const cert = await openssl(
      ['x509', '-req', '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', serial()],
      ['-days', String(this.days), '-sha256', '-extfile', config, '-extensions', 'ext'],
      csr,
    );
    await this.writeFile(files.cert, cert, 0o644);
    return files;
  }

  private files(name: string): CertFiles {
    return { cert: join(this.dir, `${name}.crt`), key: join(this.dir, `${name}.key`) };
  }

  private async writeKey(path: string): Promise<void> {
    const key = await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    await this.writeFile(path, key, 0o600);
  }

  /** Written beside the target, then renamed: a reader never sees a half-written or too-open file. */
  private async writeFile(path: string, data: string, mode: number): Promise<void> {
    const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(temp, data, { mode, flag: 'wx' });
    await chmod(temp, mode);
    await rename(temp, path);
    this.written.push(path);
  }

  private async config(name: string, extensions: Extensions): Promise<string> {
    const lines = ['[req]', 'distinguished_name = dn', '[dn]', '[ext]'];
    for (const [field, value] of Object.entries(extensions)) lines.push(`${field} = ${value}`);
    const path = join(this.work, `${name}.cnf`);
    await writeFile(path, `${lines.join('\n')}\n`);
    return path;
  }
}

function openssl(args: readonly string[], more: readonly string[] = [], input?: string): Promise<string> {
  const argv = [...args, ...more];
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (e) =>
      reject(
        errors.PKI_FAILED(`cannot run openssl (${e.message}); is it installed?`, undefined, { cause: e }),
      ),
    );
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else {
        const reason = Buffer.concat(err).toString('utf8').trim().split('\n').slice(0, 3).join('; ');
        reject(errors.PKI_FAILED(`openssl ${argv[0]} failed (exit ${code}): ${reason}`));
      }
    });
    // openssl may exit before reading its input (EPIPE); its exit code tells what happened.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

async function exists(files: CertFiles): Promise<boolean> {
  const present = async (path: string) =>
    stat(path).then(
      (s) => s.isFile(),
      () => false,
    );
  return (await present(files.cert)) && (await present(files.key));
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f; // positive, as RFC 5280 requires
  return `0x${bytes.toString('hex')}`;
}

function altNames(names: readonly string[]): string {
  return names.map((n) => (isIP(n) !== 0 ? `IP:${n}` : `DNS:${n}`)).join(',');
}

const ID = new RegExp(ID_PATTERN);
const DNS_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function checkIds(what: string, ids: readonly string[]): void {
  const bad = ids.filter((id) => !ID.test(id));
  if (bad.length > 0) {
    throw errors.PKI_FAILED(
      `${what} ids must be lowercase letters, digits and dashes (got ${bad.map((b) => JSON.stringify(b)).join(', ')})`,
    );
  }
  if (new Set(ids).size !== ids.length) throw errors.PKI_FAILED(`${what} ids must be unique`);
}

function checkNames(what: string, names: readonly string[]): void {
  if (names.length === 0) throw errors.PKI_FAILED(`${what} certificates need at least one name`);
  const bad = names.filter((n) => isIP(n) === 0 && !DNS_NAME.test(n));
  if (bad.length > 0) {
    throw errors.PKI_FAILED(
      `${what} names must be DNS names or IP addresses (got ${bad.map((b) => JSON.stringify(b)).join(', ')})`,
    );
  }
}
