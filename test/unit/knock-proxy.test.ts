// `nonstop knock --proxy HOST:PORT` as ssh's ProxyCommand uses it, against local TCP servers:
// it knocks, connects (again, while the window is not yet open), carries the bytes both ways
// on stdin/stdout, and exits when either side closes; over IPv4 and IPv6.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseProxyTarget } from '../../knock/client.js';

const CLI = join(import.meta.dirname, '..', '..', 'cli', 'index.js');
const servers: Server[] = [];
after(() => servers.forEach((s) => s.close()));

async function listen(onConnection: (c: Socket) => void, host = '127.0.0.1', port = 0): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, onConnection);
  servers.push(server);
  server.listen(port, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** An echo server: what it reads it writes back, and it ends when the client ends. */
const echo = (host?: string) => listen((c) => c.pipe(c), host);

/** A port that nothing listens on (it was free a moment ago). */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Runs the CLI with `input` on stdin (kept open when `input` is undefined). */
function cli(args: string[], input?: string) {
  const child = spawn(process.execPath, [CLI, 'knock', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  if (input !== undefined) child.stdin.end(input);
  const done = once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }));
  return { child, done };
}

test('parseProxyTarget: HOST:PORT, a bare IPv6 address with its port (ssh %h:%p), [V6]:PORT', () => {
  assert.deepEqual(parseProxyTarget('198.51.100.10:22'), { host: '198.51.100.10', port: 22 });
  assert.deepEqual(parseProxyTarget('gw1.example.net:2222'), { host: 'gw1.example.net', port: 2222 });
  assert.deepEqual(parseProxyTarget('2001:2:0:1::a:22'), { host: '2001:2:0:1::a', port: 22 });
  assert.deepEqual(parseProxyTarget('[2001:2:0:1::a]:22'), { host: '2001:2:0:1::a', port: 22 });
  for (const bad of ['gw1', 'gw1:', ':22', 'gw1:0', 'gw1:65536', '1:2:3', '[gw1:22', 'a b:22x'])
    assert.throws(() => parseProxyTarget(bad), /HOST:PORT|not an IPv6 address/, bad);
});

for (const host of ['127.0.0.1', '::1']) {
  test(`--proxy carries a connection both ways to ${host} and exits 0 when it ends`, async () => {
    const port = await echo(host);
    const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const payload = `SSH-2.0-test\r\n${'x'.repeat(200_000)}\n`;
    const r = await cli([host, '--sequence', '7000', '--delay', '0', '--proxy', target], payload).done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, payload, 'stdout is exactly the connection, nothing else');
    assert.equal(r.stderr, '');
  });
}

test('--proxy knocks first, and connects again until the window opens', async () => {
  // A stand-in guard: the service port, free until then, starts listening 800 ms after the
  // knock port was first hit (what the guard's window does to a filtered port, refusing here).
  const servicePort = await freePort();
  let knocks = 0;
  const guardPort = await listen((c) => {
    knocks++;
    c.destroy();
    if (knocks === 1) setTimeout(() => void listen((s) => s.pipe(s), '127.0.0.1', servicePort), 800);
  });
  const r = await cli(
    [
      '127.0.0.1',
      '--sequence',
      String(guardPort),
      '--proxy',
      `127.0.0.1:${servicePort}`,
      '--attempts',
      '8',
      '--connect-timeout',
      '500',
    ],
    'after the knock\n',
  ).done;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'after the knock\n');
  assert.ok(knocks >= 2, `knocked ${knocks} time(s): every attempt knocks again`);
  assert.match(r.stderr, /attempt 1 failed \(connect ECONNREFUSED[^)]*\); knocking again/);
});

test('--proxy exits when the server closes first, with stdin still open', async () => {
  const port = await listen((c) => c.end('bye\n'));
  const { child, done } = cli(['127.0.0.1', '--sequence', '7000', '--proxy', `127.0.0.1:${port}`]);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const r = await done;
  clearTimeout(timer);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'bye\n');
});

test('--proxy to a closed port: exit 1, a message on stderr, nothing on stdout', async () => {
  const port = await freePort();
  const r = await cli(
    ['127.0.0.1', '--sequence', '7000', '--proxy', `127.0.0.1:${port}`, '--attempts', '2'],
    'x',
  ).done;
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(
    r.stderr,
    new RegExp(`cannot connect to 127\\.0\\.0\\.1:${port} after 2 attempts: connect ECONNREFUSED`),
  );
});

test('--proxy: usage errors name the problem', async () => {
  for (const [args, message] of [
    [['--proxy', 'gw1'], /--proxy: expected HOST:PORT/],
    [['--proxy', 'gw1:22', '--then-ssh'], /does not run ssh/],
    [['--proxy', 'gw1:22', '--attempts', '0'], /--attempts must be at least 1/],
  ] as const) {
    const r = await cli(['127.0.0.1', '--sequence', '7000', ...args], '').done;
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, '');
  }
});
