// `nonstop knock`: knocks on a gateway (or any knockd server), optionally then runs ssh.
import { spawn } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatKnockStep, loadKnockConfig, parseKnockSequence, type KnockProfile } from '../config/knock.js';
import { profileSequence, resolveGateway, sendKnock } from '../knock/client.js';
import { errors } from '../lib/errors.js';
import { parseCommandArgs, UsageError, type Command } from './command.js';

export function defaultProfilesFile(): string {
  return process.env.NONSTOP_KNOCK_PROFILES ?? join(homedir(), '.config', 'nonstop', 'knock.json');
}

export const knockCommand: Command = {
  name: 'knock',
  summary: 'send the knock sequence for a gateway (profile or static sequence), optionally then ssh',
  help: `Usage: nonstop knock [GATEWAY] (--profile NAME | --sequence SEQ) [options] [-- SSH-ARGS...]

Sends one SYN per TCP step (an abandoned connect, no root needed) and one datagram per UDP step.
A rotating profile computes the current sequence from its secret and the clock.

  --profile NAME     profile from the profiles file ("kind": "knock")
  --profiles FILE    profiles file (default $NONSTOP_KNOCK_PROFILES or ~/.config/nonstop/knock.json)
  --sequence SEQ     static sequence, knockd notation: 7000,8000:udp,9000 (works with knockd)
  --delay MS         pause between steps (default: the profile's delayMs, else 30)
  --bind ADDR        send from this local address (also used for ssh)
  --then-ssh         run ssh to the gateway's SSH port right after knocking
  --ssh-port N       SSH port (default: the profile's sshPort, else 22)
  --user NAME        SSH user (default: the profile's sshUser)
  --wait MS          pause between the last knock and ssh (default 200)
  --dry-run          print what would be sent (and the ssh command), send nothing

GATEWAY defaults to the profile's host. Arguments after "--" go to ssh.`,
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
        delay: { type: 'string' },
        bind: { type: 'string' },
        'then-ssh': { type: 'boolean' },
        'ssh-port': { type: 'string' },
        user: { type: 'string' },
        wait: { type: 'string' },
        'dry-run': { type: 'boolean' },
      },
      true,
    );
    if (values.help) {
      console.log(this.help);
      return 0;
    }
    if ((values.profile === undefined) === (values.sequence === undefined))
      throw new UsageError('knock needs exactly one of --profile NAME or --sequence SEQ');

    let profile: KnockProfile | undefined;
    if (values.profile !== undefined) {
      const file = values.profiles ?? defaultProfilesFile();
      profile = loadKnockConfig(file).profiles[values.profile];
      if (profile === undefined)
        throw errors.KNOCK_PROFILE_NOT_FOUND(`${file}: no profile named "${values.profile}"`);
    }
    let steps;
    try {
      steps = values.sequence !== undefined ? parseKnockSequence(values.sequence) : profileSequence(profile!);
    } catch (err) {
      throw new UsageError(`--sequence: ${(err as Error).message}`);
    }
    if (positionals.length > 1) throw new UsageError('knock takes one GATEWAY; put ssh arguments after "--"');
    const target = positionals[0];
    const host = target ?? profile?.host;
    if (host === undefined) throw new UsageError('knock needs a GATEWAY (or a profile with "host")');
    const delayMs = intOption('--delay', values.delay) ?? profile?.delayMs ?? 30;
    const sshPort = intOption('--ssh-port', values['ssh-port']) ?? profile?.sshPort ?? 22;
    const waitMs = intOption('--wait', values.wait) ?? 200;
    const user = values.user ?? profile?.sshUser;

    const address = await resolveGateway(host);
    const ssh = [
      '-p',
      String(sshPort),
      ...(values.bind !== undefined ? ['-b', values.bind] : []),
      user !== undefined ? `${user}@${address}` : address,
      ...sshArgs,
    ];
    if (values['dry-run']) {
      console.log(`knock ${address}: ${steps.map(formatKnockStep).join(' ')}`);
      if (values['then-ssh']) console.log(`then: ssh ${ssh.join(' ')}`);
      return 0;
    }
    try {
      await sendKnock(address, steps, {
        delayMs,
        ...(values.bind !== undefined ? { localAddress: values.bind } : {}),
      });
    } catch (err) {
      throw errors.KNOCK_FAILED(`knock ${address}: ${(err as Error).message}`, undefined, { cause: err });
    }
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

function intOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,6}$/.test(value)) throw new UsageError(`${name} must be a whole number (got "${value}")`);
  return Number(value);
}
