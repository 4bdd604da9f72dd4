// A redis-server of the test's own on a free loopback port, for faults that must not touch
// the shared one (stopping, restarting). Killed by pid after the test.
import { spawn, type ChildProcess } from 'node:child_process';
import type { TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { freePort } from '../../lib/free-port.js';

export interface OwnRedis {
  readonly port: number;
  readonly process: ChildProcess;
  /** Stops it for good (SIGKILL) and waits for the exit. */
  kill(): Promise<void>;
  /** Starts a new redis-server on the same port. */
  restart(): Promise<void>;
}

async function launch(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', '/tmp'],
    { stdio: 'ignore' },
  );
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
  probe.on('error', () => {});
  for (let i = 0; i < 100; i++) {
    if (
      await probe.connect().then(
        () => true,
        () => false,
      )
    ) {
      probe.disconnect();
      return child;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server on port ${port} did not start`);
}

export async function startOwnRedis(t: TestContext): Promise<OwnRedis> {
  const port = await freePort();
  let child = await launch(port);
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  t.after(kill);
  return {
    port,
    get process() {
      return child;
    },
    kill,
    async restart() {
      await kill();
      child = await launch(port);
    },
  };
}
