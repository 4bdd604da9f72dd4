// A logger whose lines a test can read back, to check what was logged (and what was not).
import { pino, type Logger } from 'pino';

export interface CapturedLog {
  readonly logger: Logger;
  /** Every line so far, parsed. */
  lines(): Record<string, unknown>[];
  /** Every line so far, as written. */
  text(): string;
}

export function captureLogger(level = 'debug'): CapturedLog {
  const written: string[] = [];
  const logger = pino({ level }, { write: (line: string) => void written.push(line) });
  return {
    logger,
    lines: () => written.map((l) => JSON.parse(l) as Record<string, unknown>),
    text: () => written.join(''),
  };
}
