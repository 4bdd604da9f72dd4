// Values that came from a gateway (job ids, job names, envelope fields, error texts that quote
// them) go into log lines only through `clip`: a compromised gateway must not turn a 50 MB job
// name into a 50 MB log line, nor a long value into a flood of the journal.

/** The most characters of one gateway-controlled value a log line carries. */
export const LOG_FIELD_MAX = 200;

/**
 * `value` as a string of at most `max` characters (plus a note of how long it was). Reads only
 * what it keeps: a huge string is sliced, never copied or scanned whole.
 */
export function clip(value: unknown, max: number = LOG_FIELD_MAX): string {
  const text = typeof value === 'string' ? value : value === undefined ? '' : stringOf(value);
  if (text.length <= max) return text;
  return `${text.slice(0, max)}… (${text.length} chars)`;
}

/** Every value of `fields` clipped: for the gateway-controlled part of a log object. */
export function clipped(fields: Readonly<Record<string, unknown>>, max?: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = clip(v, max);
  return out;
}

function stringOf(value: unknown): string {
  if (Buffer.isBuffer(value)) return `<${value.length} bytes>`;
  if (typeof value === 'object' && value !== null) return Object.prototype.toString.call(value);
  return String(value);
}
