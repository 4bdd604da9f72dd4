// Structured logging: one JSON object a line. Request bodies and secrets are never logged;
// the redact list is a second line of defence for fields that must not leak by accident.
import { pino, type Logger } from 'pino';
import { errors } from './errors.js';

export type { Logger };

const REDACT = [
  'body',
  '*.body',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'key',
  '*.key',
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
];

/** The levels a config's `logLevel` and NONSTOP_LOG_LEVEL may name. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The level a daemon logs at: NONSTOP_LOG_LEVEL when set (an operator turning up one daemon's
 * logging without editing its config), else the config's, else info. A level pino does not know
 * fails at start, naming the variable.
 */
export function effectiveLogLevel(configured: string | undefined, env = process.env): string {
  const fromEnv = env.NONSTOP_LOG_LEVEL;
  if (fromEnv === undefined || fromEnv === '') return configured ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(fromEnv))
    throw errors.CONFIG_INVALID(
      `NONSTOP_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(fromEnv)})`,
    );
  return fromEnv;
}

export function createLogger(
  role: string,
  options: { level?: string; destination?: number | string } = {},
): Logger {
  const level = effectiveLogLevel(options.level);
  const dest = pino.destination({ dest: options.destination ?? 1, sync: false });
  return pino(
    {
      level,
      base: { role, pid: process.pid },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
