// Knock sequences as written in config files and on the command line (knockd's notation:
// `7000`, `7000:tcp`, `8000:udp`), and the checks a schema cannot express: port ranges, clashes
// between knock ports and the ports the guard serves, duplicate names.
import { isIP } from 'node:net';
import { SPA_ENCRYPTION_KEY_BYTES, SPA_HMAC_KEY_BYTES } from '../knock/spa-keys.js';
import { errors } from '../lib/errors.js';
import { loadConfig, validateConfig } from './load.js';
import type { GuardConfig } from './schemas/guard.js';
import type { KnockConfig } from './schemas/knock.js';
import type { RotationParams } from './schemas/knock-common.js';

export type { GuardConfig, KnockConfig, RotationParams };
export type { KnockProfile } from './schemas/knock.js';

export type KnockProtocol = 'tcp' | 'udp';

export interface KnockStep {
  readonly port: number;
  readonly protocol: KnockProtocol;
}

/** Parses one step; returns a message (not an exception) when it is not a valid step. */
export function parseKnockStep(text: string): KnockStep | string {
  const m = /^([0-9]{1,5})(?::(tcp|udp))?$/.exec(text.trim());
  if (m === null) return `"${text}" is not a knock step (PORT, PORT:tcp or PORT:udp)`;
  const port = Number(m[1]);
  if (port < 1 || port > 65535) return `port ${port} is outside 1-65535`;
  return { port, protocol: (m[2] ?? 'tcp') as KnockProtocol };
}

/** `7000,8000:udp,9000` (or an array of steps) to steps; throws with the offending part. */
export function parseKnockSequence(input: string | readonly string[]): KnockStep[] {
  const parts = typeof input === 'string' ? input.split(',') : input;
  if (parts.length === 0) throw new Error('a knock sequence needs at least one step');
  return parts.map((part) => {
    const step = parseKnockStep(part);
    if (typeof step === 'string') throw new Error(step);
    return step;
  });
}

export function formatKnockStep(step: KnockStep): string {
  return `${step.port}:${step.protocol}`;
}

function fail(file: string, problems: string[]): never {
  throw errors.CONFIG_INVALID(
    problems.map((p) => `${file}: field "${p.replace(/: /, '" ')}`).join('\n'),
    problems,
  );
}

function checkRotation(r: RotationParams, where: string, problems: string[]): void {
  if (r.portMin > r.portMax) problems.push(`${where}.portMax: must be at least portMin (${r.portMin})`);
  else if (r.portMax - r.portMin + 1 < r.length * 2)
    problems.push(
      `${where}.portMax: the port range must hold at least twice "length" (${r.length * 2}) ports`,
    );
}

export function checkGuardConfig(file: string, config: GuardConfig): GuardConfig {
  const problems: string[] = [];
  const served = new Set([config.sshPort, ...config.publicTcpPorts]);
  if (config.publicTcpPorts.includes(config.sshPort))
    problems.push(`sshPort: ${config.sshPort} is also in publicTcpPorts`);
  if (config.divertProtocols.tcp === config.divertProtocols.udp)
    problems.push('divertProtocols.udp: must differ from divertProtocols.tcp');
  const r = config.rotating;
  checkRotation(r, 'rotating', problems);
  const rotatingUsed = r.clients.length > 0;
  if (rotatingUsed) {
    for (const port of served) {
      if (port >= r.portMin && port <= r.portMax)
        problems.push(
          `rotating.portMin: the knock range ${r.portMin}-${r.portMax} contains served port ${port}`,
        );
    }
  }
  const names = new Set<string>();
  r.clients.forEach((c, i) => {
    if (names.has(c.name)) problems.push(`rotating.clients[${i}].name: "${c.name}" is used twice`);
    if (c.previousSecret === c.secret)
      problems.push(
        `rotating.clients[${i}].previousSecret: is the same as "secret" (a rotation needs a new one)`,
      );
    names.add(c.name);
  });
  config.static.forEach((s, i) => {
    if (names.has(s.name))
      problems.push(`static[${i}].name: "${s.name}" is already a client or sequence name`);
    names.add(s.name);
    s.sequence.forEach((text, j) => {
      const step = parseKnockStep(text);
      if (typeof step === 'string') problems.push(`static[${i}].sequence[${j}]: ${step}`);
      else if (step.protocol === 'tcp' && served.has(step.port))
        problems.push(`static[${i}].sequence[${j}]: port ${step.port} is a served port, not a knock port`);
    });
  });
  if (config.spa !== undefined) checkSpa(config, problems);
  if (problems.length > 0) fail(file, problems);
  return config;
}

function checkSpa(config: GuardConfig, problems: string[]): void {
  const spa = config.spa!;
  config.static.forEach((s, i) =>
    s.sequence.forEach((text, j) => {
      const step = parseKnockStep(text);
      if (typeof step !== 'string' && step.protocol === 'udp' && step.port === spa.port)
        problems.push(`static[${i}].sequence[${j}]: port ${spa.port}/udp is the SPA port`);
    }),
  );
  const names = new Set<string>();
  const hmacKeys = new Map<string, string>();
  spa.clients.forEach((c, i) => {
    const where = `spa.clients[${i}]`;
    if (names.has(c.name)) problems.push(`${where}.name: "${c.name}" is used twice`);
    names.add(c.name);
    // The first client whose HMAC key authenticates a packet is its sender: keys must be unique.
    const owner = hmacKeys.get(c.hmacKey);
    if (owner !== undefined) problems.push(`${where}.hmacKey: the same key as client "${owner}"'s`);
    hmacKeys.set(c.hmacKey, c.name);
    checkSpaKeys(where, c, problems);
  });
}

/** Key lengths fwknop accepts, which the schema's base64 pattern cannot say. */
function checkSpaKeys(where: string, keys: { key: string; hmacKey: string }, problems: string[]): void {
  const length = (text: string, field: string, what: string, bounds: { min: number; max: number }) => {
    const n = Buffer.from(text, 'base64').length;
    if (n < bounds.min || n > bounds.max)
      problems.push(`${where}.${field}: decodes to ${n} bytes; ${what} is ${bounds.min}-${bounds.max}`);
  };
  length(keys.key, 'key', 'a Rijndael key', SPA_ENCRYPTION_KEY_BYTES);
  length(keys.hmacKey, 'hmacKey', 'an HMAC-SHA256 key', SPA_HMAC_KEY_BYTES);
}

export function loadGuardConfig(file: string): GuardConfig {
  return checkGuardConfig(file, loadConfig('guard', file));
}

export function parseGuardConfig(file: string, doc: unknown): GuardConfig {
  return checkGuardConfig(file, validateConfig('guard', file, doc));
}

export function checkKnockConfig(file: string, config: KnockConfig): KnockConfig {
  const problems: string[] = [];
  for (const [name, profile] of Object.entries(config.profiles)) {
    const where = `profiles.${name}`;
    const ways = [profile.sequence, profile.rotating, profile.spa].filter((w) => w !== undefined);
    if (ways.length !== 1) problems.push(`${where}: needs exactly one of "sequence", "rotating" or "spa"`);
    if (profile.spa !== undefined) checkSpaKeys(`${where}.spa`, profile.spa, problems);
    if (profile.spa?.allow !== undefined && isIP(profile.spa.allow) === 0)
      problems.push(`${where}.spa.allow: "${profile.spa.allow}" is not an IP address`);
    if (profile.rotating !== undefined) checkRotation(profile.rotating, `${where}.rotating`, problems);
    profile.sequence?.forEach((text, j) => {
      const step = parseKnockStep(text);
      if (typeof step === 'string') problems.push(`${where}.sequence[${j}]: ${step}`);
    });
  }
  if (problems.length > 0) fail(file, problems);
  return config;
}

export function loadKnockConfig(file: string): KnockConfig {
  return checkKnockConfig(file, loadConfig('knock', file));
}

export function parseKnockConfig(file: string, doc: unknown): KnockConfig {
  return checkKnockConfig(file, validateConfig('knock', file, doc));
}
