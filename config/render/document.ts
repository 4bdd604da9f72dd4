// What every host-config builder ends with: the document it built must pass the schema its
// daemon loads it with (config/load.ts), or it is never written.
import { deepFreeze, validateConfig, type ConfigKind } from '../load.js';

/** `doc`, frozen, once the daemon's own schema accepts it; a CONFIG_INVALID naming `label` else. */
export function checkedDocument<K extends ConfigKind, D extends { readonly kind: K }>(
  kind: K,
  label: string,
  doc: D,
): D {
  validateConfig(kind, label, doc);
  return deepFreeze(doc);
}

/** Leaves a field out when its value is, so that the schema's default applies. */
export function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
