// fwknopd (Debian's fwknop-server) on a world host, for the tests and the bench that set nonstop
// against it: UDP-server mode (no pcap) on one port, a config of its own in a folder, and
// stanzas whose CMD_CYCLE_OPEN is the only thing it runs on a valid packet. With such stanzas
// fwknopd manages no firewall of its own (FIREWALL_EXE points at nothing to prove it), so the
// open command decides what "open" means: an nft element, or a file touched.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Host, HostProcess } from './world.js';

export interface FwknopdClient {
  readonly name: string;
  /** KEY_BASE64 */
  readonly key: string;
  /** HMAC_KEY_BASE64 */
  readonly hmacKey: string;
}

export interface FwknopdOptions {
  readonly port: number;
  readonly clients: readonly FwknopdClient[];
  /** What fwknopd runs for a valid packet; $IP, $PROTO, $PORT and the client's name (%c) filled in. */
  readonly openCommand: string;
}

/** Writes fwknopd's config files under `dir`; returns the arguments that run it on them. */
export function writeFwknopdConfig(dir: string, options: FwknopdOptions): string[] {
  const conf = join(dir, 'fwknopd.conf');
  const access = join(dir, 'access.conf');
  writeFileSync(
    conf,
    [
      'ENABLE_UDP_SERVER Y;',
      `UDPSERV_PORT ${options.port};`,
      `FWKNOP_RUN_DIR ${dir};`,
      'ENABLE_DIGEST_PERSISTENCE Y;',
      'ENABLE_SPA_PACKET_AGING Y;',
      'MAX_SPA_PACKET_AGE 120;',
      'FIREWALL_EXE /nonexistent;',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  writeFileSync(
    access,
    options.clients
      .map((c) =>
        [
          'SOURCE ANY',
          `KEY_BASE64 ${c.key}`,
          `HMAC_KEY_BASE64 ${c.hmacKey}`,
          `CMD_CYCLE_OPEN ${options.openCommand.replaceAll('%c', c.name)}`,
          'CMD_CYCLE_CLOSE NONE',
          '',
        ].join('\n'),
      )
      .join('\n'),
    { mode: 0o600 },
  );
  return [
    '-c',
    conf,
    '-a',
    access,
    '-f',
    '-v',
    '-p',
    join(dir, 'fwknopd.pid'),
    '-d',
    join(dir, 'digest.cache'),
  ];
}

/** The line fwknopd logs once it listens. */
export const FWKNOPD_LISTENING = 'Kicking off UDP server';

/** Starts fwknopd in `host` with its files under `dir`; resolves once it listens. */
export async function startFwknopd(host: Host, dir: string, options: FwknopdOptions): Promise<HostProcess> {
  const fwknopd = host.spawn('fwknopd', writeFwknopdConfig(dir, options));
  await fwknopd
    .waitForLine((l) => l.includes(FWKNOPD_LISTENING), 10_000)
    .catch((err: Error) => {
      throw new Error(`${host.name}: fwknopd did not start (${err.message}):\n${fwknopdSaid(fwknopd)}`);
    });
  return fwknopd;
}

/** Everything fwknopd wrote so far (it logs to both streams). */
export function fwknopdSaid(fwknopd: HostProcess): string {
  return [...fwknopd.lines, ...fwknopd.stderrLines].join('\n');
}
