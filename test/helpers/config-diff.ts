// Key-by-key comparison of two daemon configs as their daemon reads them (schema defaults
// filled, as `sshd -T` shows sshd's): what the world runs against what a host was given.
import { validateConfig, type ConfigKind } from '../../config/load.js';

export interface ConfigDifference {
  /** Dotted path, array items as [i]. */
  readonly path: string;
  readonly world: unknown;
  readonly deployed: unknown;
}

function leaves(value: unknown, path: string, out: Map<string, unknown>): void {
  if (Array.isArray(value)) {
    if (value.length === 0) out.set(path, []);
    value.forEach((v, i) => leaves(v, `${path}[${i}]`, out));
  } else if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    if (entries.length === 0) out.set(path, {});
    for (const [k, v] of entries) leaves(v, path === '' ? k : `${path}.${k}`, out);
  } else out.set(path, value);
}

/** Every leaf in which the two effective documents differ (present on one side only included). */
export function configDifferences(kind: ConfigKind, world: unknown, deployed: unknown): ConfigDifference[] {
  const a = new Map<string, unknown>();
  const b = new Map<string, unknown>();
  leaves(validateConfig(kind, `world ${kind}`, world), '', a);
  leaves(validateConfig(kind, `deployed ${kind}`, deployed), '', b);
  const out: ConfigDifference[] = [];
  for (const path of new Set([...a.keys(), ...b.keys()]))
    if (JSON.stringify(a.get(path)) !== JSON.stringify(b.get(path)))
      out.push({ path, world: a.get(path), deployed: b.get(path) });
  return out.sort((x, y) => x.path.localeCompare(y.path));
}

/** Whether a declared key (`[*]`: any item; a key covers what is under it) covers `path`. */
export function declares(declared: string, path: string): boolean {
  const general = path.replace(/\[\d+\]/g, '[*]');
  return general === declared || general.startsWith(`${declared}.`) || general.startsWith(`${declared}[`);
}

/** The differences that no declared key covers, as "path: world … deployed …" lines. */
export function undeclaredDifferences(
  kind: ConfigKind,
  world: unknown,
  deployed: unknown,
  declared: Readonly<Record<string, string>>,
): string[] {
  return configDifferences(kind, world, deployed)
    .filter((d) => !Object.keys(declared).some((k) => declares(k, d.path)))
    .map((d) => `${d.path}: world ${JSON.stringify(d.world)}, deployed ${JSON.stringify(d.deployed)}`);
}
