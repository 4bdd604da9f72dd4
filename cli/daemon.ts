// Shared life cycle of the long-running roles: load config, start, run until a signal,
// shut down gracefully within a bound.
import { createLogger, type Logger } from '../lib/log.js';
import { parseCommandArgs, UsageError, untilSignal } from './command.js';

const SHUTDOWN_GRACE_MS = 15_000;

export interface Running {
  close(): Promise<void>;
  /** Resolves (with the reason) when the daemon must stop for a reason other than a signal. */
  readonly until?: Promise<string>;
}

export async function runDaemon(
  role: string,
  help: string,
  argv: string[],
  start: (
    configFile: string,
    makeLog: (level: string) => Logger,
    values: Readonly<Record<string, string | boolean | undefined>>,
  ) => Promise<Running>,
  extraOptions: Readonly<Record<string, { type: 'string' | 'boolean' }>> = {},
): Promise<number> {
  const { values } = parseCommandArgs(argv, { config: { type: 'string', short: 'c' }, ...extraOptions });
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (values.config === undefined) throw new UsageError(`${role} needs --config FILE`);
  let log: Logger | undefined;
  const running = await start(values.config, (level) => (log = createLogger(role, { level })), values);
  const reason = await Promise.race([untilSignal(), ...(running.until ? [running.until] : [])]);
  log?.info({ reason }, 'shutting down');
  const timer = setTimeout(() => {
    log?.error('graceful shutdown took too long; exiting');
    process.exit(1);
  }, SHUTDOWN_GRACE_MS);
  timer.unref();
  await running.close();
  log?.info('stopped');
  log?.flush();
  return 0;
}
