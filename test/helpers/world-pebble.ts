// A real ACME CA inside the namespace world: Debian's `pebble` in the `inet` host, its directory on
// inet's public address, with `pebble-challtestsrv` as its DNS (on inet's loopback; it knows
// only the names a test adds through its management API). Prepared (its TLS certificate and
// config) before the world's gateways are configured, started later; both processes run by pid
// in the world, which stops them at close if the test has not.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatePki } from '../../lib/pki.js';
import type { Host, HostProcess } from '../../world/world.js';
import { challtestsrvArgs, PEBBLE_ENV, pebbleConfig } from './pebble.js';
import { until } from './until.js';

const ACME_PORT = 14000;
const MANAGEMENT_PORT = 15000;
const DNS = '127.0.0.1:8053';
const DNS_MANAGEMENT = 'http://127.0.0.1:8055';

export interface PreparedPebble {
  readonly directoryUrl: string;
  /** The CA of pebble's own HTTPS (directory and management), for the gateways' `caFile`. */
  readonly caFile: string;
  start(): Promise<RunningPebble>;
}

export interface RunningPebble {
  /** Answers A queries for `name` with `address` (and nothing else for it). */
  addA(name: string, address: string): Promise<void>;
  /** The root that signs what pebble issues (a new one each start), as PEM. */
  issuingRoot(): Promise<string>;
  /** pebble's own output: which addresses it validated, what failed. */
  output(): string;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** Lifetime of the certificates it issues, in seconds (pebble's default: 90 days). */
  readonly validitySeconds?: number;
}

export async function preparePebble(
  inet: Host,
  dir: string,
  options: PebbleOptions = {},
): Promise<PreparedPebble> {
  const pki = await generatePki({
    dir: join(dir, 'pki'),
    brokers: [],
    gateways: ['pebble'],
    gatewayNames: [inet.ip4],
  });
  const configFile = join(dir, 'pebble.json');
  writeFileSync(
    configFile,
    pebbleConfig({
      listen: `${inet.ip4}:${ACME_PORT}`,
      management: `127.0.0.1:${MANAGEMENT_PORT}`,
      cert: pki.gateways.pebble!.cert,
      key: pki.gateways.pebble!.key,
      // Where the validations go: the gateways' own ports.
      httpPort: 80,
      tlsPort: 443,
      validitySeconds: options.validitySeconds,
    }),
  );
  const directoryUrl = `https://${inet.ip4}:${ACME_PORT}/dir`;
  const caFile = pki.publicCa.cert;
  return {
    directoryUrl,
    caFile,
    start: () => startPebble(inet, configFile, directoryUrl, caFile),
  };
}

async function startPebble(
  inet: Host,
  configFile: string,
  directoryUrl: string,
  caFile: string,
): Promise<RunningPebble> {
  const processes: HostProcess[] = [];
  const stop = async () => {
    await Promise.all(processes.map((p) => p.stop(2000)));
  };
  const curl = (args: string[]) => inet.exec('curl', ['-sS', '--max-time', '5', ...args]);
  try {
    processes.push(
      // No default answers: a name resolves only once the test adds it.
      inet.spawn('pebble-challtestsrv', challtestsrvArgs('', DNS, DNS_MANAGEMENT.slice('http://'.length))),
    );
    processes.push(inet.spawn('pebble', ['-config', configFile, '-dnsserver', DNS], PEBBLE_ENV));
    await until(
      'pebble to answer its directory and challtestsrv its management API',
      async () => {
        if (processes.some((p) => !p.running)) throw new Error('pebble or pebble-challtestsrv exited');
        const dir = await curl(['-o', '/dev/null', '-w', '%{http_code}', '--cacert', caFile, directoryUrl]);
        // Any HTTP answer (404 here): its management API listens.
        const dns = await curl(['-o', '/dev/null', '-w', '%{http_code}', `${DNS_MANAGEMENT}/`]);
        return dir.stdout === '200' && dns.stdout !== '000';
      },
      15_000,
      200,
    );
  } catch (err) {
    const output = processes.flatMap((p) => [...p.lines, ...p.stderrLines]).join('\n');
    await stop();
    throw new Error(`${(err as Error).message}\n${output}`, { cause: err });
  }
  return {
    async addA(name, address) {
      const r = await curl([
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-X',
        'POST',
        '-d',
        JSON.stringify({ host: name.endsWith('.') ? name : `${name}.`, addresses: [address] }),
        `${DNS_MANAGEMENT}/add-a`,
      ]);
      if (r.stdout !== '200') throw new Error(`challtestsrv add-a ${name}: ${r.stdout} ${r.stderr}`);
    },
    async issuingRoot() {
      const r = await curl(['--fail', '--cacert', caFile, `https://127.0.0.1:${MANAGEMENT_PORT}/roots/0`]);
      if (r.code !== 0 || !r.stdout.includes('BEGIN CERTIFICATE'))
        throw new Error(`pebble /roots/0: ${r.code} ${r.stderr}`);
      return r.stdout;
    },
    output: () => processes.flatMap((p) => [...p.lines, ...p.stderrLines]).join('\n'),
    stop,
  };
}
