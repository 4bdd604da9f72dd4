// `nonstop knock`: knocks on a gateway (or any knockd server), optionally then runs ssh.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatKnockStep, loadKnockConfig, parseKnockSequence, type KnockProfile } from '../config/knock.js';
import {
  carry,
  connectAfterKnock,
  parseProxyTarget,
  profileSequence,
  profileSpa,
  resolveGateway,
  sendKnock,
  sendSpa,
  type SpaKnock,
} from '../knock/client.js';
import { parseSpaKeyFile } from '../knock/spa.js';
import { errors, isNonstopError } from '../lib/errors.js';
import { parseCommandArgs, UsageError, type Command } from './command.js';

export function defaultProfilesFile(): string {
  return process.env.NONSTOP_KNOCK_PROFILES ?? join(homedir(), '.config', 'nonstop', 'knock.json');
}

export const knockCommand: Command = {
  name: 'knock',
  help: `Usage: nonstop knock [GATEWAY] (--profile NAME | --sequence SEQ | --spa --spa-keys FILE) [options] [-- SSH-ARGS...]
       nonstop knock [GATEWAY] (--profile NAME | --sequence SEQ | --spa --spa-keys FILE) --proxy HOST:PORT [options]

Sends one SYN per TCP step (an abandoned connect, no root needed) and one datagram per UDP step.
A rotating profile computes the current sequence from its secret and the clock. With --spa (or
a profile with "spa"), one single-packet authorization datagram in fwknop's format instead: it
opens a nonstop guard's SPA port and a real fwknopd alike.

  --profile NAME     profile from the profiles file ("kind": "knock")
  --profiles FILE    profiles file (default $NONSTOP_KNOCK_PROFILES or ~/.config/nonstop/knock.json)
  --sequence SEQ     static sequence, knockd notation: 7000,8000:udp,9000 (works with knockd)
  --spa              send an SPA packet (keys from --spa-keys, or the profile's "spa")
  --spa-keys FILE    SPA keys as \`nonstop spa-keygen\` or \`fwknop --key-gen\` print them
  --spa-port N       the SPA port (default: the profile's, else 62201, fwknop's)
  --spa-allow ADDR   the address the packet asks to open (default 0.0.0.0: the one it comes from)
  --delay MS         pause between steps (default: the profile's delayMs, else 30)
  --bind ADDR        send from this local address (also used for ssh)
  --then-ssh         run ssh to the gateway's SSH port right after knocking
  --ssh-port N       SSH port (default: the profile's sshPort, else 22)
  --user NAME        SSH user (default: the profile's sshUser)
  --wait MS          pause between the last knock and ssh (default 200)
  --proxy HOST:PORT  knock, connect to HOST:PORT and carry the connection on stdin/stdout (an
                     ssh ProxyCommand: ProxyCommand nonstop knock %h --profile ops --proxy %h:%p);
                     HOST may be an IPv6 address, bare or in brackets
  --attempts N       with --proxy: knock and connect up to N times (default 5)
  --connect-timeout MS  with --proxy: how long one connect may take (default 3000)
  --dry-run          print what would be sent (and the ssh command), send nothing

GATEWAY defaults to the profile's host. Arguments after "--" go to ssh. With --proxy nothing but
the connection's bytes goes to stdout; what goes wrong is said on stderr.`,
  async run(argvAll) {
    const dashes = argvAll.indexOf('--');
    const argv = dashes === -1 ? argvAll : argvAll.slice(0, dashes);
    const sshArgs = dashes === -1 ? [] : argvAll.slice(dashes + 1);
    const { values, positionals } = parseCommandArgs(
      argv,
      {
        profile: { type: 'string', short: 'p' },
        profiles: { type: 'string' },
        sequence: { type: 'string', short: 's' },
        spa: { type: 'boolean' },
        'spa-keys': { type: 'string' },
        'spa-port': { type: 'string' },
        'spa-allow': { type: 'string' },
        delay: { type: 'string' },
        bind: { type: 'string' },
        'then-ssh': { type: 'boolean' },
        'ssh-port': { type: 'string' },
        user: { type: 'string' },
        wait: { type: 'string' },
        'dry-run': { type: 'boolean' },
        proxy: { type: 'string' },
        attempts: { type: 'string' },
        'connect-timeout': { type: 'string' },
      },
      true,
    );
    if (values.help) {
      console.log(this.help);
      return 0;
    }
    const keysFile = values['spa-keys'];
    const ways = [values.profile, values.sequence, keysFile].filter((w) => w !== undefined).length;
    if (ways !== 1)
      throw new UsageError(
        'knock needs exactly one of --profile NAME, --sequence SEQ or --spa --spa-keys FILE',
      );
    if (keysFile !== undefined && !values.spa) throw new UsageError('--spa-keys goes with --spa');
    if (values.spa && values.sequence !== undefined)
      throw new UsageError('--spa sends no sequence: drop --sequence');

    let profile: KnockProfile | undefined;
    if (values.profile !== undefined) {
      const file = values.profiles ?? defaultProfilesFile();
      profile = loadKnockConfig(file).profiles[values.profile];
      if (profile === undefined)
        throw errors.KNOCK_PROFILE_NOT_FOUND(`${file}: no profile named "${values.profile}"`);
    }
    const sshPortOption = intOption('--ssh-port', values['ssh-port']);
    const spa = spaRequest(values, profile, values.profile, sshPortOption);
    if (values.spa && spa === undefined)
      throw new UsageError(`--spa: profile "${values.profile}" has no "spa" section`);
    let steps;
    try {
      steps =
        spa !== undefined
          ? []
          : values.sequence !== undefined
            ? parseKnockSequence(values.sequence)
            : profileSequence(profile!);
    } catch (err) {
      throw new UsageError(`--sequence: ${(err as Error).message}`);
    }
    if (positionals.length > 1) throw new UsageError('knock takes one GATEWAY; put ssh arguments after "--"');
    const target = positionals[0];
    const host = target ?? profile?.host;
    if (host === undefined) throw new UsageError('knock needs a GATEWAY (or a profile with "host")');
    const delayMs = intOption('--delay', values.delay) ?? profile?.delayMs ?? 30;
    const sshPort = sshPortOption ?? profile?.sshPort ?? 22;
    const waitMs = intOption('--wait', values.wait) ?? 200;
    const user = values.user ?? profile?.sshUser;
    let proxy: { host: string; port: number } | undefined;
    if (values.proxy !== undefined) {
      if (values['then-ssh'] || sshArgs.length > 0)
        throw new UsageError(
          '--proxy carries a connection for ssh; it does not run ssh (no --then-ssh, no "--")',
        );
      try {
        proxy = parseProxyTarget(values.proxy);
      } catch (err) {
        throw new UsageError(`--proxy: ${(err as Error).message}`);
      }
    }
    const attempts = intOption('--attempts', values.attempts) ?? 5;
    if (attempts < 1) throw new UsageError('--attempts must be at least 1');
    const connectTimeoutMs = intOption('--connect-timeout', values['connect-timeout']) ?? 3000;

    const address = await resolveGateway(host);
    const ssh = [
      '-p',
      String(sshPort),
      ...(values.bind !== undefined ? ['-b', values.bind] : []),
      user !== undefined ? `${user}@${address}` : address,
      ...sshArgs,
    ];
    if (values['dry-run']) {
      // With --proxy, stdout is ssh's connection: say it on stderr.
      const say = proxy !== undefined ? console.error : console.log;
      say(
        spa !== undefined
          ? `knock ${address}: spa to ${spa.port}/udp asking tcp/${spa.sshPort} for ${spa.allow ?? 'the sending address'}`
          : `knock ${address}: ${steps.map(formatKnockStep).join(' ')}`,
      );
      if (values['then-ssh']) say(`then: ssh ${ssh.join(' ')}`);
      if (proxy !== undefined) say(`then: connect ${proxy.host} port ${proxy.port}`);
      return 0;
    }
    const localAddress = values.bind !== undefined ? { localAddress: values.bind } : {};
    const knock = async () => {
      // A rotating profile's sequence is recomputed for every knock (the step may have moved on).
      try {
        if (spa !== undefined) await sendSpa(address, spa, localAddress);
        else
          await sendKnock(address, values.sequence !== undefined ? steps : profileSequence(profile!), {
            delayMs,
            ...localAddress,
          });
      } catch (err) {
        throw errors.KNOCK_FAILED(`knock ${address}: ${(err as Error).message}`, undefined, { cause: err });
      }
    };
    if (proxy !== undefined)
      return proxyConnection(proxy, { attempts, connectTimeoutMs, waitMs, knock, ...localAddress });
    await knock();
    if (!values['then-ssh']) return 0;
    await sleep(waitMs);
    return new Promise<number>((resolve) => {
      const child = spawn('ssh', ssh, { stdio: 'inherit' });
      child.on('error', (err) => {
        console.error(`nonstop: cannot run ssh: ${err.message}`);
        resolve(1);
      });
      child.on('exit', (code, signal) => resolve(code ?? (signal !== null ? 1 : 0)));
    });
  },
};

/** Knocks, connects and carries the connection on stdin/stdout until either side closes. */
async function proxyConnection(
  target: { host: string; port: number },
  options: Parameters<typeof connectAfterKnock>[2],
): Promise<number> {
  const where = target.host.includes(':')
    ? `[${target.host}]:${target.port}`
    : `${target.host}:${target.port}`;
  let socket;
  try {
    socket = await connectAfterKnock(target.host, target.port, {
      ...options,
      onRetry: (attempt, err) =>
        console.error(
          `nonstop: knock --proxy: ${where}: attempt ${attempt} failed (${err.message}); knocking again`,
        ),
    });
  } catch (err) {
    if (isNonstopError(err)) throw err;
    console.error(
      `nonstop: knock --proxy: cannot connect to ${where} after ${options?.attempts ?? 5} attempts: ${(err as Error).message}`,
    );
    return 1;
  }
  const failure = await carry(socket, process.stdin, process.stdout);
  process.stdin.destroy();
  if (failure === undefined) return 0;
  console.error(`nonstop: knock --proxy: ${where}: ${failure.message}`);
  return 1;
}

/** The SPA packet to send: from --spa-keys (with --spa-port/--spa-allow), or a profile's "spa". */
function spaRequest(
  values: { 'spa-keys'?: string; 'spa-port'?: string; 'spa-allow'?: string },
  profile: KnockProfile | undefined,
  profileName: string | undefined,
  sshPortOption: number | undefined,
): SpaKnock | undefined {
  const fromProfile = profile === undefined ? undefined : profileSpa(profile, profileName);
  const file = values['spa-keys'];
  if (file === undefined && fromProfile === undefined) {
    if (values['spa-port'] !== undefined || values['spa-allow'] !== undefined)
      throw new UsageError('--spa-port and --spa-allow go with --spa');
    return undefined;
  }
  const allow = values['spa-allow'];
  if (allow !== undefined && isIP(allow) === 0)
    throw new UsageError(`--spa-allow: "${allow}" is not an IP address`);
  const port = intOption('--spa-port', values['spa-port']);
  if (port !== undefined && (port < 1 || port > 65535)) throw new UsageError('--spa-port must be 1-65535');
  let key = fromProfile?.key;
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw errors.CONFIG_UNREADABLE(`--spa-keys: cannot read ${file}`, undefined, { cause: err });
    }
    key = parseSpaKeyFile(text, file);
  }
  const chosenAllow = allow ?? fromProfile?.allow;
  return {
    port: port ?? fromProfile?.port ?? 62201,
    sshPort: sshPortOption ?? fromProfile?.sshPort ?? 22,
    key: key!,
    ...(chosenAllow === undefined ? {} : { allow: chosenAllow }),
  };
}

function intOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,6}$/.test(value)) throw new UsageError(`${name} must be a whole number (got "${value}")`);
  return Number(value);
}
