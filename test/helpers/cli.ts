// Runs the built `nonstop` CLI as a child process.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** dist/cli/index.js, from dist/test/helpers. */
export const CLI = fileURLToPath(new URL('../../cli/index.js', import.meta.url));

export interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function startCli(args: readonly string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Collects a child's output until it exits. */
export function finished(child: ChildProcessWithoutNullStreams): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export function runCli(args: readonly string[]): Promise<Finished> {
  const child = startCli(args);
  child.stdin.end();
  return finished(child);
}

/** Resolves with the first JSON log line on stdout for which `match` is true. */
export function waitForLogLine(
  child: ChildProcessWithoutNullStreams,
  match: (line: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const text of lines) {
        let line: unknown;
        try {
          line = JSON.parse(text);
        } catch {
          continue;
        }
        if (typeof line === 'object' && line !== null && match(line as Record<string, unknown>)) {
          child.stdout.off('data', onData);
          resolve(line as Record<string, unknown>);
          return;
        }
      }
    };
    child.stdout.on('data', onData);
    child.on('close', (code) => reject(new Error(`the process exited (code ${code}) before the log line`)));
  });
}
