// A real ACME server for a test: Debian's `pebble` on loopback, with `pebble-challtestsrv` as its
// DNS (every name is 127.0.0.1), both stopped (by pid) and their files removed after the test.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort } from '../../lib/free-port.js';
import { generatePki } from '../../lib/pki.js';
import { tempDir } from './files.js';
import { until } from './until.js';

/** pebble-challtestsrv as a DNS server only (its own HTTP-01/TLS-ALPN-01 responders off). */
export function challtestsrvArgs(defaultIPv4: string, dns: string, management: string): string[] {
  return [
    ...['-defaultIPv4', defaultIPv4, '-defaultIPv6', ''],
    ...['-dns01', dns, '-http01', '', '-https01', '', '-tlsalpn01', ''],
    ...['-management', management],
  ];
}

/** Pebble validating for real: no sleeps, no always-valid, no nonce rejections, no reused authz. */
export const PEBBLE_ENV = {
  PEBBLE_VA_NOSLEEP: '1',
  PEBBLE_VA_ALWAYS_VALID: '0',
  PEBBLE_WFE_NONCEREJECT: '0',
  PEBBLE_AUTHZREUSE: '0',
} as const;

/** Pebble's config file: where it listens, its TLS files, and the ports it validates on. */
export function pebbleConfig(c: {
  listen: string;
  management: string;
  cert: string;
  key: string;
  httpPort: number;
  tlsPort: number;
  validitySeconds?: number | undefined;
}): string {
  return JSON.stringify({
    pebble: {
      listenAddress: c.listen,
      managementListenAddress: c.management,
      certificate: c.cert,
      privateKey: c.key,
      httpPort: c.httpPort,
      tlsPort: c.tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
      ...(c.validitySeconds === undefined ? {} : { certificateValidityPeriod: c.validitySeconds }),
    },
  });
}

export interface Pebble {
  readonly directoryUrl: string;
  /** The CA of pebble's own HTTPS (its listener's certificate). */
  readonly caFile: string;
  /** Stops pebble (the CA becomes unreachable). */
  stop(): void;
}

export interface PebbleOptions {
  /** The port pebble sends HTTP-01 validations to (the gateway's HTTP port). */
  readonly httpPort: number;
  /** The port pebble sends TLS-ALPN-01 validations to (the gateway's HTTPS port). */
  readonly tlsPort: number;
  /** Lifetime of the certificates it issues, in seconds. */
  readonly validitySeconds?: number;
}

export async function startPebble(t: TestContext, options: PebbleOptions): Promise<Pebble> {
  const dir = tempDir(t, 'nonstop-pebble-');
  const pki = await generatePki({ dir: join(dir, 'pki'), brokers: [], gateways: ['pebble'] });
  const [acmePort, managementPort, dnsPort, challManagementPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const children: ChildProcess[] = [];
  t.after(() => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  });
  const output: string[] = [];
  const run = (command: string, args: string[], env: Record<string, string> = {}): ChildProcess => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    children.push(child);
    child.stdout.on('data', (c: Buffer) => output.push(c.toString()));
    child.stderr.on('data', (c: Buffer) => output.push(c.toString()));
    return child;
  };
  run(
    'pebble-challtestsrv',
    challtestsrvArgs('127.0.0.1', `127.0.0.1:${dnsPort}`, `127.0.0.1:${challManagementPort}`),
  );
  const configFile = join(dir, 'pebble.json');
  writeFileSync(
    configFile,
    pebbleConfig({
      listen: `127.0.0.1:${acmePort}`,
      management: `127.0.0.1:${managementPort}`,
      cert: pki.gateways.pebble!.cert,
      key: pki.gateways.pebble!.key,
      httpPort: options.httpPort,
      tlsPort: options.tlsPort,
      validitySeconds: options.validitySeconds,
    }),
  );
  const pebble = run('pebble', ['-config', configFile, '-dnsserver', `127.0.0.1:${dnsPort}`], PEBBLE_ENV);
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  const ca = readFileSync(pki.publicCa.cert);
  try {
    await until('pebble to answer its directory', () => directoryAnswers(directoryUrl, ca), 15_000, 100);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${output.join('')}`, { cause: err });
  }
  return {
    directoryUrl,
    caFile: pki.publicCa.cert,
    stop: () => {
      if (pebble.exitCode === null) pebble.kill('SIGKILL');
    },
  };
}

function directoryAnswers(url: string, ca: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, { ca }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}
