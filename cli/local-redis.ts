// The Redis of `nonstop local` when none is named: a redis-server of its own on a free loopback
// port, with nothing on disk, stopped with the rest. A fresh machine runs no Redis, and one that
// does keeps its data out of a demo's way.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { errors } from '../lib/errors.js';
import { freePort } from '../lib/free-port.js';

export interface LocalRedis {
  readonly host: string;
  readonly port: number;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startLocalRedis(dir: string): Promise<LocalRedis> {
  const port = await freePort();
  const args = ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'];
  const child = spawn('redis-server', [...args, '--dir', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const failed = new Promise<Error>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      resolve(
        err.code === 'ENOENT'
          ? errors.CONFIG_INVALID(
              'nonstop local: redis-server is not installed (Debian: apt install redis-server), or pass --redis HOST:PORT',
            )
          : err,
      ),
    );
    child.once('exit', (code) =>
      resolve(new Error(`redis-server exited with code ${code}: ${stderr.trim()}`)),
    );
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited(child);
  };
  for (const end = Date.now() + START_TIMEOUT_MS; Date.now() < end;) {
    const outcome = await Promise.race([failed, sleep(100).then(() => undefined)]);
    if (outcome !== undefined) throw outcome;
    if (await answers(port)) return { host: '127.0.0.1', port, stop };
  }
  await stop();
  throw new Error(`redis-server did not answer on 127.0.0.1:${port} within ${START_TIMEOUT_MS / 1000} s`);
}
