// Real client addresses behind a proxy: PROXY protocol headers (v1, v2, before TLS) and
// X-Forwarded-For, against a gateway with a real Redis; the envelope read back from its queue.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { Queue } from 'bullmq';
import { queueName } from '../../lib/envelope.js';
import { startTestGateway, untilReady } from '../helpers/gateway.js';
import { captureLogger } from '../helpers/log.js';
import { usePki } from '../helpers/pki.js';
import { proxyV1, proxyV2 } from '../helpers/proxy-protocol.js';
import { REDIS_HOST, REDIS_PORT, testRedis, type TestRedis } from '../helpers/redis.js';

const hop = (source: string) => ({
  source,
  sourcePort: 40000,
  destination: '198.18.1.1',
  destinationPort: 80,
});

/** Writes `bytes` on a fresh loopback connection; resolves with all it got back once closed. */
function exchange(t: TestContext, port: number, bytes: Buffer | string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    t.after(() => socket.destroy());
    let out = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (out += d));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(out));
  });
}

function get(path: string, headers = ''): string {
  return `GET ${path} HTTP/1.1\r\nhost: gw.test\r\n${headers}connection: close\r\n\r\n`;
}

function useQueue(t: TestContext, redis: TestRedis): Queue {
  const queue = new Queue(queueName('gw1'), {
    connection: { host: REDIS_HOST, port: REDIS_PORT },
    prefix: redis.prefix,
  });
  t.after(() => queue.close());
  return queue;
}

/** The client addresses of the jobs queued so far, once there are `n` of them. */
async function queuedClients(queue: Queue, n: number): Promise<string[]> {
  for (let i = 0; i < 100; i++) {
    const jobs = await queue.getJobs(['wait', 'active']);
    if (jobs.length >= n) return jobs.map((j) => (j.data as { clientIp: string }).clientIp).sort();
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`fewer than ${n} jobs were queued`);
}

/** untilReady for a listener in PROXY mode: asks /readyz as the proxy's own health check would. */
async function untilReadyBehindProxy(t: TestContext, port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const answer = await exchange(t, port, Buffer.concat([proxyV2('local'), Buffer.from(get('/readyz'))]));
    if (status(answer) === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('gateway not ready');
}

function status(answer: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
}

describe('client addresses', () => {
  const pki = usePki();

  test('PROXY v1 and v2 from a trusted proxy set clientIp and each client has its own bucket', async (t) => {
    const redis = testRedis(t);
    const queue = useQueue(t, redis);
    const { gateway } = await startTestGateway(t, {
      prefix: redis.prefix,
      overrides: {
        http: { host: '127.0.0.1', port: 0, mode: 'serve', proxyProtocol: true },
        clientAddress: { trustedProxies: ['127.0.0.0/8'], proxyHeaderTimeoutMs: 300 },
        limits: { rateBurst: 2, ratePerSecond: 0.01 },
        replyTimeoutMs: 1000,
      },
    });
    const port = gateway.http!.port;
    // A proxy's own health check (LOCAL) counts as the proxy, and is served.
    await untilReadyBehindProxy(t, port);
    // The header and the request in one write, and in two (the header alone first).
    const v1 = exchange(t, port, Buffer.concat([proxyV1(hop('203.0.113.1')), Buffer.from(get('/notes'))]));
    const v2 = new Promise<string>((resolve) => {
      const socket: Socket = connect(port, '127.0.0.1', () => {
        socket.write(proxyV2(hop('2001:db8::2')));
        setTimeout(() => socket.write(get('/notes')), 50);
      });
      t.after(() => socket.destroy());
      let out = '';
      socket.on('data', (d: Buffer) => (out += d.toString()));
      socket.on('close', () => resolve(out));
    });
    assert.deepEqual(await queuedClients(queue, 2), ['2001:db8::2', '203.0.113.1']);
    // No broker answers: the deadline's 504 shows the request went through whole.
    assert.equal(status(await v1), 504);
    assert.equal(status(await v2), 504);

    // 203.0.113.1 has one token left, then none; 203.0.113.3 behind the same proxy has its own.
    const via = (client: string) =>
      exchange(t, port, Buffer.concat([proxyV1(hop(client)), Buffer.from(get('/nothing'))]));
    assert.equal(status(await via('203.0.113.1')), 404);
    assert.equal(status(await via('203.0.113.1')), 429);
    assert.equal(status(await via('203.0.113.3')), 404);
    assert.equal(status(await via('203.0.113.3')), 404);
    assert.equal(status(await via('203.0.113.3')), 429);

    // In PROXY mode a header is required: plain HTTP, garbage, or silence are closed unanswered.
    assert.equal(await exchange(t, port, get('/healthz')), '');
    assert.equal(await exchange(t, port, 'PROXY TCP4 1.2.3.4\r\n' + get('/healthz')), '');
    const started = Date.now();
    assert.equal(await exchange(t, port, Buffer.from('PROXY ')), '');
    assert.ok(Date.now() - started >= 250, 'closed at the header timeout');
  });

  test("a malformed request behind a proxy is logged with the client's address, not the proxy's", async (t) => {
    const redis = testRedis(t);
    const log = captureLogger();
    const { gateway } = await startTestGateway(t, {
      prefix: redis.prefix,
      logger: log.logger,
      overrides: {
        http: { host: '127.0.0.1', port: 0, mode: 'serve', proxyProtocol: true },
        clientAddress: { trustedProxies: ['127.0.0.0/8'] },
      },
    });
    const port = gateway.http!.port;
    const answer = await exchange(
      t,
      port,
      Buffer.concat([proxyV1(hop('203.0.113.5')), Buffer.from('GET / HTTP/1.1\r\nno colon here\r\n\r\n')]),
    );
    assert.equal(status(answer), 400);
    const line = log.lines().find((l) => l['msg'] === 'malformed request');
    assert.ok(line, log.text());
    assert.equal(line['clientIp'], '203.0.113.5');
  });

  test('a PROXY header from an untrusted source is never believed: the connection is closed', async (t) => {
    const redis = testRedis(t);
    const queue = useQueue(t, redis);
    const { gateway } = await startTestGateway(t, {
      prefix: redis.prefix,
      overrides: {
        http: { host: '127.0.0.1', port: 0, mode: 'serve', proxyProtocol: true },
        clientAddress: { trustedProxies: ['192.0.2.0/24'] },
      },
    });
    const port = gateway.http!.port;
    const answer = await exchange(
      t,
      port,
      Buffer.concat([proxyV1(hop('203.0.113.1')), Buffer.from(get('/notes'))]),
    );
    assert.equal(answer, '');
    assert.equal((await queue.getJobs(['wait', 'active'])).length, 0, 'nothing reached the queue');
  });

  test('HTTPS: the PROXY header comes before the TLS handshake', async (t) => {
    const redis = testRedis(t);
    const queue = useQueue(t, redis);
    const { gateway, url } = await startTestGateway(t, {
      prefix: redis.prefix,
      overrides: {
        https: {
          host: '127.0.0.1',
          port: 0,
          cert: pki().gateways.gw1!.cert,
          key: pki().gateways.gw1!.key,
          proxyProtocol: true,
        },
        clientAddress: { trustedProxies: ['127.0.0.1'] },
        replyTimeoutMs: 1000,
      },
    });
    // Its queue up (and its clock measured): else the answer is 503, not the deadline's 504.
    await untilReady(url);
    const raw = connect(gateway.https!.port, '127.0.0.1');
    t.after(() => raw.destroy());
    await new Promise((resolve) => raw.once('connect', resolve));
    raw.write(proxyV2({ ...hop('198.51.100.77'), destinationPort: 443 }));
    const answer = await new Promise<string>((resolve, reject) => {
      const tls = tlsConnect({ socket: raw, servername: 'localhost', rejectUnauthorized: false }, () => {
        tls.write(get('/notes'));
      });
      let out = '';
      tls.on('data', (d: Buffer) => (out += d.toString()));
      tls.on('error', reject);
      tls.on('close', () => resolve(out));
    });
    assert.equal(status(answer), 504);
    assert.match(answer, /strict-transport-security/i, 'answered by the HTTPS listener');
    assert.deepEqual(await queuedClients(queue, 1), ['198.51.100.77']);
  });

  test('X-Forwarded-For counts from a trusted peer only', async (t) => {
    for (const [trustedProxies, expected] of [
      [['192.0.2.0/24'], '127.0.0.1'],
      [['127.0.0.1', '10.0.0.0/8'], '203.0.113.50'],
    ] as const) {
      const redis = testRedis(t);
      const queue = useQueue(t, redis);
      const { url, gateway } = await startTestGateway(t, {
        prefix: redis.prefix,
        overrides: { clientAddress: { trustedProxies }, replyTimeoutMs: 500 },
      });
      await untilReady(url);
      const answer = exchange(
        t,
        gateway.http!.port,
        get('/notes', 'x-forwarded-for: 203.0.113.50, 10.9.9.9\r\n'),
      );
      assert.deepEqual(await queuedClients(queue, 1), [expected], `trusting ${trustedProxies.join(' ')}`);
      assert.equal(status(await answer), 504);
    }
  });
});
