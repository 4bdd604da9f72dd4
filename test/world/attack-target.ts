// What the compromised-gateway attacker's attacks share (test/world/gateway-attacker.ts): one
// tunnel port as the gateway's own Redis user, a report, and the keys to remove at the end.
import type { Redis } from 'ioredis';

export interface Target {
  readonly port: number;
  /** `<prefix>:gw-<id>`: every key the attacker touches starts with it. */
  readonly base: string;
  /** The other gateway's queue, named in forged options (never written: the ACL forbids it). */
  readonly otherBase: string;
  readonly prefix: string;
  readonly gateway: string;
  readonly user: string;
  readonly password: string;
  /**
   * A new connection as the gateway's user; closed at the end. `once`: a command whose
   * connection drops fails instead of being sent again (for values Redis refuses by closing).
   */
  connect(options?: { once?: boolean }): Redis;
  stopping(): boolean;
  /** Resolves when the attacker is told to stop (stdin closed). */
  readonly stopped: Promise<void>;
  /** Counts an outcome ("OOM", "NOPERM", "written", …) for the report. */
  count(what: string, n?: number): void;
  note(key: string, value: unknown): void;
  /** Keys to remove at the end. */
  readonly keys: Set<string>;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The first word of an error: OOM, NOPERM, ERR, ECONNRESET… */
export function kind(err: unknown): string {
  const text = String(err instanceof Error ? ((err as NodeJS.ErrnoException).code ?? err.message) : err);
  return text.split(/[\s:]/)[0] || 'error';
}

/** A command in RESP, for raw sockets. */
export function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** Writes `value` under `key` with the first write command this user may run; returns its name. */
export async function writeValue(r: Redis, key: string, value: Buffer, prefer?: string): Promise<string> {
  const writers: [string, () => Promise<unknown>][] = [
    ['set', () => r.set(key, value)],
    ['hset', () => r.hset(key, 'v', value)],
    ['rpush', () => r.rpush(key, value)],
    ['xadd', () => r.xadd(key, '*', 'v', value)],
  ];
  let last: unknown;
  for (const [name, write] of writers) {
    if (prefer !== undefined && name !== prefer) continue;
    try {
      await write();
      return name;
    } catch (err) {
      last = err;
      if (kind(err) !== 'NOPERM') throw err;
    }
  }
  throw last;
}
