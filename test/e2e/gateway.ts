// A gateway host for e2e tests: HTTP listeners on 80 and 443, a real sshd with a throwaway host
// key on port 22, and `nonstop guard` with the given guard config.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Host, HostProcess, World } from '../../world/world.js';
import { ensurePrivsepDir } from '../../world/gateway-sshd.js';

export const AGENT = 'dist/test/world/agent.js';
export const CLI = 'dist/cli/index.js';

/**
 * ssh's options for a test login: never prompts, trusts and records no host key (every world
 * has fresh ones), gives up after 5 s and prints only errors.
 */
export const BATCH_SSH_OPTIONS: readonly string[] = [
  '-o',
  'BatchMode=yes',
  '-o',
  'StrictHostKeyChecking=no',
  '-o',
  'UserKnownHostsFile=/dev/null',
  '-o',
  'ConnectTimeout=5',
  '-o',
  'LogLevel=ERROR',
];

/** What a TCP connect from `from` to `addr`:`port` sees: "open", "closed" or "filtered". */
export async function probe(
  from: Host,
  addr: string,
  port: number,
  options: { bind?: string; timeoutMs?: number } = {},
): Promise<string> {
  const bind = options.bind === undefined ? [] : ['--bind', options.bind];
  const timeout = String(options.timeoutMs ?? 700);
  const r = await from.runNode(AGENT, ['probe', addr, String(port), ...bind, '--timeout', timeout]);
  return r.stdout.trim();
}

export interface Gateway {
  readonly host: Host;
  readonly dir: string;
  readonly guard: HostProcess;
  readonly clientKey: string;
  /** Audit lines (`event: knock`) the guard logged so far. */
  audit(): Record<string, unknown>[];
}

/** Listeners that accept and answer HTTP (on 80 and 443, or the ports given). */
export async function startHttp(host: Host, ports: readonly number[] = [80, 443]): Promise<HostProcess> {
  const http = host.node(AGENT, ['http', ...ports.map(String)]);
  await http.waitForLine((l) => l === 'ready');
  return http;
}

export async function startSshd(host: Host, dir: string): Promise<string> {
  ensurePrivsepDir();
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'hostkey')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client')]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client.pub')), { mode: 0o600 });
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      'Port 22',
      `HostKey ${join(dir, 'hostkey')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const sshd = host.spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')]);
  // Ready when it listens (probe from inside: loopback is always accepted).
  for (let i = 0; i < 50; i++) {
    const r = await host.runNode(AGENT, ['probe', '127.0.0.1', '22', '--timeout', '300']);
    if (r.stdout.trim() === 'open') return join(dir, 'client');
    if (!sshd.running) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not start: ${sshd.stderrLines.join('\n')}`);
}

export async function startGuard(host: Host, dir: string, config: object): Promise<HostProcess> {
  const file = join(dir, `guard-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  const guard = host.node(CLI, ['guard', '--config', file]);
  await guard.waitForLine((l) => l.includes('"event":"started"'), 15000);
  return guard;
}

export async function startGateway(world: World, name: string, config: object): Promise<Gateway> {
  const host = await world.addHost(name, { public: 1 });
  const dir = join(world.dir, name);
  mkdirSync(dir, { recursive: true });
  await startHttp(host);
  const clientKey = await startSshd(host, dir);
  const guard = await startGuard(host, dir, config);
  return {
    host,
    dir,
    guard,
    clientKey,
    audit: () => guard.jsonLines().filter((l) => l.event === 'knock'),
  };
}

/** Writes a `nonstop knock --profiles` file (kind "knock") to `dir`/knock.json; returns its path. */
export function writeKnockProfiles(dir: string, profiles: Readonly<Record<string, object>>): string {
  const file = join(dir, 'knock.json');
  writeFileSync(file, JSON.stringify({ kind: 'knock', profiles }));
  return file;
}

/** Polls until `check` resolves true, or gives up after `timeoutMs`. Returns the elapsed ms. */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 50,
): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
