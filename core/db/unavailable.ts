// Which database errors mean "try again later" rather than "this request failed": the
// transaction was rolled back or never started, so nothing was recorded.

/** SQLSTATE classes and codes after which a retry can succeed. */
const RETRYABLE_SQLSTATE = [
  /^08/, // connection exception
  /^53/, // insufficient resources (too many connections, disk full, out of memory)
  /^57P0[1-4]$/, // admin/crash shutdown, cannot connect now, database dropped
  /^40001$/, // serialization failure
  /^40P01$/, // deadlock detected
];

const RETRYABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);

const LOST_CONNECTION = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Cannot use a pool after calling end',
];

export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const { code, syscall } = err as { code?: unknown; syscall?: unknown };
  if (typeof code === 'string') {
    if (RETRYABLE_ERRNO.has(code)) return true;
    // No socket file: the server over a Unix socket is stopped (a clean stop removes it) or
    // between its crash and its restart. Only for a connect: another ENOENT is no outage.
    if (code === 'ENOENT' && syscall === 'connect') return true;
    if (RETRYABLE_SQLSTATE.some((re) => re.test(code))) return true;
  }
  if (LOST_CONNECTION.some((m) => err.message.includes(m))) return true;
  if (err instanceof AggregateError) return err.errors.some(isUnavailable);
  return err.cause !== undefined && isUnavailable(err.cause);
}
