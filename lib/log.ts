// Structured logging: one JSON object a line. Request bodies and secrets are never logged;
// the redact list is a second line of defence for fields that must not leak by accident.
import { pino, type Logger } from 'pino';

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

export function createLogger(
  role: string,
  options: { level?: string; destination?: number | string } = {},
): Logger {
  const level = options.level ?? process.env.NONSTOP_LOG_LEVEL ?? 'info';
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
