// Comparing two sshd configurations the way sshd itself sees them (`sshd -T`): the world's and
// a deployed one must agree on every key but those a namespace world has to change.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensurePrivsepDir, WORLD_SSHD_DIFFERENCES } from '../../world/gateway-sshd.js';

const run = promisify(execFile);

/** `sshd -T` output as key → value (lower-case keys; a key printed on several lines: joined by spaces). */
export function parseSshdT(stdout: string): Map<string, string> {
  const settings = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const i = line.indexOf(' ');
    if (i <= 0) continue;
    const key = line.slice(0, i);
    const before = settings.get(key);
    settings.set(key, before === undefined ? line.slice(i + 1) : `${before} ${line.slice(i + 1)}`);
  }
  return settings;
}

/** The effective settings of `file` for a connection of `user` from `addr`. */
export async function sshdEffective(
  file: string,
  user: string,
  addr = '198.18.0.20',
): Promise<Map<string, string>> {
  // sshd -T refuses to run without its privilege separation dir, which only a running
  // sshd service creates (a fresh machine has none).
  ensurePrivsepDir();
  const { stdout } = await run('/usr/sbin/sshd', [
    '-T',
    '-f',
    file,
    '-C',
    `user=${user},host=b,addr=${addr}`,
  ]);
  return parseSshdT(stdout);
}

/** Keys on which `a` and `b` differ, beyond `allowed` (default: what the world may change). */
export function sshdDifferences(
  a: ReadonlyMap<string, string>,
  b: ReadonlyMap<string, string>,
  allowed: readonly string[] = WORLD_SSHD_DIFFERENCES,
): string[] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys]
    .filter((k) => !allowed.includes(k) && a.get(k) !== b.get(k))
    .map((k) => `${k}: ${a.get(k) ?? '(unset)'} vs ${b.get(k) ?? '(unset)'}`)
    .sort();
}
