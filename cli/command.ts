// The shape of a `nonstop` subcommand, and helpers they share.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isNonstopError } from '../lib/errors.js';

export interface Command {
  readonly name: string;
  /** Full help text for `nonstop <name> --help`. */
  readonly help: string;
  /** Runs the command; resolves to the exit code. Long-running commands resolve on shutdown. */
  run(argv: string[]): Promise<number>;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs with `--help` built in and errors turned into UsageError. */
export function parseCommandArgs<O extends Options>(argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Prints an error for a person and returns the exit code to use. */
export function reportError(err: unknown): number {
  if (err instanceof UsageError) {
    console.error(`nonstop: ${err.message}\nRun with --help for usage.`);
    return 2;
  }
  if (isNonstopError(err)) {
    console.error(`nonstop: ${err.message}`);
    return 1;
  }
  console.error(
    `nonstop: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
  );
  return 1;
}

/** Resolves when the process receives SIGINT or SIGTERM. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const done = (sig: NodeJS.Signals) => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve(sig);
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}
