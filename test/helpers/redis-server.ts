// A private redis-server for one test file (ACL tests must never touch the shared Redis):
// its own temp folder, a free loopback port, killed by pid afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface PrivateRedis {
  readonly port: number;
  readonly dir: string;
  /** A connection as `user` (for the admin user, a client that can read ACL LOG). */
  connect(user?: string, password?: string): Redis;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function startPrivateRedis(options: { aclFile?: string } = {}): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'nonstop-test-redis-'));
  const port = await freePort();
  const conf = [
    `port ${port}`,
    'bind 127.0.0.1',
    `dir ${dir}`,
    'save ""',
    'appendonly no',
    'acllog-max-len 1024',
    // So that the ACL, not this switch, is what refuses DEBUG in tests.
    'enable-debug-command yes',
    ...(options.aclFile === undefined ? [] : [`aclfile ${options.aclFile}`]),
  ];
  writeFileSync(join(dir, 'redis.conf'), `${conf.join('\n')}\n`);
  const child: ChildProcess = spawn('redis-server', [join(dir, 'redis.conf')], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  // Wait until it answers (an error such as NOAUTH is an answer: it is up).
  const end = Date.now() + 5000;
  while (!(await answers(port))) {
    if (Date.now() > end || child.exitCode !== null) {
      await stop();
      throw new Error(`redis-server on port ${port} did not start`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    dir,
    connect: (username, password) => {
      const client = new Redis({
        host: '127.0.0.1',
        port,
        username,
        password,
        maxRetriesPerRequest: 1,
        enableReadyCheck: false,
      });
      client.on('error', () => {}); // Refusals are what ACL tests look for; commands reject.
      return client;
    },
    stop,
  };
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.setTimeout(500, () => socket.destroy());
    socket.once('data', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}
