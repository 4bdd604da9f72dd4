// HTTP abuse on a gateway's listeners (plain HTTP and HTTPS), against a real `nonstop gateway`
// process in front of a broker and a core: every abusive request is answered 4xx or closed,
// none reaches the queue, valid clients are served during and after the abuse, and the
// gateway's memory stays bounded. What test/integration/gateway-limits.test.ts already covers
// (404/405/413/415/431/414, the header timeout, the connection cap) is not repeated here.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { startCore } from '../../core/server.js';
import { freePort } from '../../lib/free-port.js';
import { silentLogger } from '../../lib/log.js';
import type { Broker } from '../../broker/broker.js';
import { brokerConfigDoc, startTestBroker } from '../helpers/broker.js';
import { testCoreConfig } from '../helpers/core.js';
import { exampleRoutesFile, tempDir } from '../helpers/files.js';
import { untilReady } from '../helpers/gateway.js';
import { sql, useTestSchema } from '../helpers/pg.js';
import { usePki, type TestPki } from '../helpers/pki.js';
import { REDIS_HOST, REDIS_PORT, testRedis } from '../helpers/redis.js';

const CLI = fileURLToPath(new URL('../../cli/index.js', import.meta.url));
/** Abusers come from another loopback address than the valid client. */
const ABUSER = '127.0.0.2';
const VALID = { title: 'a valid note' };
const VALID_JSON = JSON.stringify(VALID);

interface System {
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly gateway: ChildProcess;
  readonly broker: Broker;
  /** Requests the core executed (its request table). */
  executed(): Promise<number>;
  /** The gateway process's resident set size, in bytes. */
  rss(): number;
}

async function system(t: TestContext, pki: TestPki): Promise<System> {
  const redis = testRedis(t);
  const { url: dbUrl, schema } = await useTestSchema(t);
  const core = await startCore(testCoreConfig(pki, { url: dbUrl, schema }), silentLogger());
  t.after(() => core.close());
  const broker = startTestBroker(
    t,
    brokerConfigDoc(pki, { prefix: redis.prefix, corePort: core.address.port }),
  );
  const dir = tempDir(t);
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const configFile = join(dir, 'gateway.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      kind: 'gateway',
      id: 'gw1',
      routes: exampleRoutesFile,
      logLevel: 'silent',
      http: { host: '127.0.0.1', port: httpPort, mode: 'serve' },
      https: { host: '127.0.0.1', port: httpsPort, cert: pki.gateways.gw1!.cert, key: pki.gateways.gw1!.key },
      redis: { host: REDIS_HOST, port: REDIS_PORT, prefix: redis.prefix },
      replyTimeoutMs: 10_000,
      // Short timeouts keep the test quick; a rate limit this high lets every abusive request
      // reach the parser instead of being refused 429 first.
      limits: { headersTimeoutMs: 1000, requestTimeoutMs: 2000, ratePerSecond: 100_000, rateBurst: 100_000 },
    }),
  );
  const gateway = spawn(process.execPath, [CLI, 'gateway', '--config', configFile], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  t.after(() => {
    if (gateway.exitCode === null && gateway.signalCode === null) gateway.kill('SIGKILL');
  });
  await untilReady(`http://127.0.0.1:${httpPort}`, 20_000);
  return {
    httpPort,
    httpsPort,
    gateway,
    broker,
    executed: async () =>
      Number(
        ((await sql(`SELECT count(*) AS n FROM ${schema}.nonstop_requests`)).rows[0] as { n: string }).n,
      ),
    rss: () => {
      const status = readFileSync(`/proc/${gateway.pid}/status`, 'utf8');
      const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status);
      assert.ok(kb, 'VmRSS in /proc/<pid>/status');
      return Number(kb[1]) * 1024;
    },
  };
}

interface Exchange {
  /** Status codes of every response, in order. */
  readonly statuses: number[];
  /** The server closed the connection. */
  readonly closed: boolean;
  readonly text: string;
}

/**
 * Sends raw bytes (in pieces, `gapMs` apart) and collects what comes back until the server
 * closes or `quietMs` pass after the last byte received (or `waitMs` in all).
 */
function exchange(
  port: number,
  pieces: readonly (string | Buffer)[],
  options: { tls?: boolean; gapMs?: number; waitMs?: number; quietMs?: number } = {},
): Promise<Exchange> {
  const { gapMs = 0, waitMs = 6000, quietMs = 400 } = options;
  return new Promise((resolve) => {
    let text = '';
    let closed = false;
    let quiet: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(quiet);
      clearTimeout(overall);
      socket.destroy();
      const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
      resolve({ statuses, closed, text });
    };
    const overall = setTimeout(finish, waitMs);
    const onConnect = async () => {
      for (const piece of pieces) {
        if (socket.destroyed) return;
        socket.write(piece);
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      }
    };
    const raw = netConnect({ host: '127.0.0.1', port, localAddress: ABUSER });
    const socket: Socket = options.tls
      ? tlsConnect({ socket: raw, rejectUnauthorized: false, servername: 'gw1' }, () => void onConnect())
      : raw.once('connect', () => void onConnect());
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
      clearTimeout(quiet);
      quiet = setTimeout(finish, quietMs);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      finish();
    });
  });
}

const post = (headers: string, body = '') => `POST /notes HTTP/1.1\r\nHost: gw\r\n${headers}\r\n${body}`;
const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;

/** Abusive requests. Where a lenient parser could read them as valid, they carry a valid note. */
const ABUSE: readonly { name: string; pieces: (string | Buffer)[]; gapMs?: number }[] = [
  // Malformed request lines.
  { name: 'garbage line', pieces: ['HELLO THERE\r\n\r\n'] },
  { name: 'method only', pieces: ['GET\r\n\r\n'] },
  { name: 'HTTP/0.9 style', pieces: ['GET /notes\r\n\r\n'] },
  { name: 'unknown version', pieces: ['GET /notes HTTP/9.9\r\nHost: gw\r\n\r\n'] },
  { name: 'extra token', pieces: ['GET /notes HTTP/1.1 extra\r\nHost: gw\r\n\r\n'] },
  { name: 'space in target', pieces: ['GET /no tes HTTP/1.1\r\nHost: gw\r\n\r\n'] },
  { name: 'unknown method', pieces: ['BREW /notes HTTP/1.1\r\nHost: gw\r\n\r\n'] },
  {
    name: 'lower-case method',
    pieces: [
      `post /notes HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: ${VALID_JSON.length}\r\n\r\n${VALID_JSON}`,
    ],
  },
  { name: 'CONNECT', pieces: ['CONNECT 198.18.0.1:6379 HTTP/1.1\r\nHost: 198.18.0.1:6379\r\n\r\n'] },
  {
    name: 'absolute-form to another host',
    pieces: ['GET http://169.254.169.254/latest/meta-data HTTP/1.1\r\nHost: gw\r\n\r\n'],
  },
  { name: 'TRACE', pieces: ['TRACE /notes HTTP/1.1\r\nHost: gw\r\n\r\n'] },
  {
    name: 'binary junk',
    pieces: [Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x01, 0x00, 0x00, 0x0d, 0x0a, 0x0d, 0x0a])],
  },
  { name: 'NUL in the target', pieces: ['GET /notes\u0000/x HTTP/1.1\r\nHost: gw\r\n\r\n'] },
  {
    name: 'bare LF line endings',
    pieces: [
      `POST /notes HTTP/1.1\nHost: gw\nContent-Type: application/json\nContent-Length: ${VALID_JSON.length}\n\n${VALID_JSON}`,
    ],
  },
  { name: 'bare CR in the request line', pieces: ['GET /notes\rHTTP/1.1\r\nHost: gw\r\n\r\n'] },
  // Content-Length.
  {
    name: 'non-numeric Content-Length',
    pieces: [post('Content-Type: application/json\r\nContent-Length: abc\r\n', VALID_JSON)],
  },
  {
    name: 'negative Content-Length',
    pieces: [post('Content-Type: application/json\r\nContent-Length: -1\r\n', VALID_JSON)],
  },
  {
    name: 'signed Content-Length',
    pieces: [post(`Content-Type: application/json\r\nContent-Length: +${VALID_JSON.length}\r\n`, VALID_JSON)],
  },
  {
    name: 'list Content-Length',
    pieces: [
      post(
        `Content-Type: application/json\r\nContent-Length: ${VALID_JSON.length}, ${VALID_JSON.length}\r\n`,
        VALID_JSON,
      ),
    ],
  },
  {
    name: 'conflicting duplicate Content-Length',
    pieces: [
      post(
        `Content-Type: application/json\r\nContent-Length: ${VALID_JSON.length}\r\nContent-Length: 3\r\n`,
        VALID_JSON,
      ),
    ],
  },
  {
    name: 'huge Content-Length',
    pieces: [
      post('Content-Type: application/json\r\nContent-Length: 99999999999999999999999\r\n', VALID_JSON),
    ],
  },
  {
    name: 'Content-Length larger than the body, then silence',
    pieces: [post('Content-Type: application/json\r\nContent-Length: 500\r\n', VALID_JSON)],
  },
  // Transfer-Encoding (request smuggling shapes).
  {
    name: 'CL and TE together (smuggled GET inside)',
    pieces: [
      post(
        'Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n',
        `${chunk(VALID_JSON)}0\r\n\r\nGET /notes HTTP/1.1\r\nHost: gw\r\n\r\n`,
      ),
    ],
  },
  {
    name: 'TE chunked, identity',
    pieces: [
      post(
        'Content-Type: application/json\r\nTransfer-Encoding: chunked, identity\r\n',
        `${chunk(VALID_JSON)}0\r\n\r\n`,
      ),
    ],
  },
  {
    name: 'TE xchunked',
    pieces: [
      post(
        'Content-Type: application/json\r\nTransfer-Encoding: xchunked\r\n',
        `${chunk(VALID_JSON)}0\r\n\r\n`,
      ),
    ],
  },
  {
    name: 'TE identity',
    pieces: [post('Content-Type: application/json\r\nTransfer-Encoding: identity\r\n', VALID_JSON)],
  },
  {
    name: 'TE gzip only',
    pieces: [post('Content-Type: application/json\r\nTransfer-Encoding: gzip\r\n', VALID_JSON)],
  },
  {
    name: 'space before the colon in TE',
    pieces: [
      post(
        'Content-Type: application/json\r\nTransfer-Encoding : chunked\r\n',
        `${chunk(VALID_JSON)}0\r\n\r\n`,
      ),
    ],
  },
  {
    name: 'TE obs-folded',
    pieces: [
      post(
        'Content-Type: application/json\r\nTransfer-Encoding:\r\n chunked\r\n',
        `${chunk(VALID_JSON)}0\r\n\r\n`,
      ),
    ],
  },
  {
    name: 'TE on HTTP/1.0',
    pieces: [
      `POST /notes HTTP/1.0\r\nHost: gw\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(VALID_JSON)}0\r\n\r\n`,
    ],
  },
  // Invalid chunked encoding.
  {
    name: 'chunk size not hex',
    pieces: [
      post(
        'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n',
        `zz\r\n${VALID_JSON}\r\n0\r\n\r\n`,
      ),
    ],
  },
  {
    name: 'chunk size overflow',
    pieces: [
      post(
        'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n',
        `ffffffffffffffffffff\r\n${VALID_JSON}\r\n0\r\n\r\n`,
      ),
    ],
  },
  {
    name: 'chunk without its CRLF',
    pieces: [
      post(
        'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n',
        `${VALID_JSON.length.toString(16)}\r\n${VALID_JSON}0\r\n\r\n`,
      ),
    ],
  },
  {
    name: 'chunk shorter than declared, then silence',
    pieces: [
      post('Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n', `100\r\n${VALID_JSON}\r\n`),
    ],
  },
  {
    name: 'chunk extension junk',
    pieces: [
      post(
        'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n',
        `${VALID_JSON.length.toString(16)};${'e'.repeat(20_000)}\r\n${VALID_JSON}\r\n0\r\n\r\n`,
      ),
    ],
  },
  {
    name: 'no last chunk, then silence',
    pieces: [post('Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n', chunk(VALID_JSON))],
  },
  {
    name: 'chunked body past the limit',
    pieces: [
      post(
        'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n',
        chunk(`{"title":"${'x'.repeat(40_000)}"}`),
      ),
    ],
  },
  // Header injection, obs-fold, NUL.
  {
    name: 'obs-fold header',
    pieces: [
      post(
        `Content-Type: application/json\r\nX-A: b\r\n c\r\nContent-Length: ${VALID_JSON.length}\r\n`,
        VALID_JSON,
      ),
    ],
  },
  {
    name: 'header without a colon',
    pieces: [
      post(
        `Content-Type: application/json\r\nNoColonHere\r\nContent-Length: ${VALID_JSON.length}\r\n`,
        VALID_JSON,
      ),
    ],
  },
  {
    name: 'space in a header name',
    pieces: [
      post(
        `Content-Type: application/json\r\nX Bad: 1\r\nContent-Length: ${VALID_JSON.length}\r\n`,
        VALID_JSON,
      ),
    ],
  },
  {
    name: 'CR injected in a value',
    pieces: [
      post(
        `Content-Type: application/json\r\nX-A: a\rContent-Length: 1\r\nContent-Length: ${VALID_JSON.length}\r\n`,
        VALID_JSON,
      ),
    ],
  },
  {
    name: 'NUL in a header value',
    pieces: [
      post(
        `Content-Type: application/json\r\nUser-Agent: a\u0000b\r\nContent-Length: ${VALID_JSON.length}\r\n`,
        VALID_JSON,
      ),
    ],
  },
  {
    name: 'NUL in a header name',
    pieces: [
      post(
        `Content-Type: application/json\r\nX-\u0000: 1\r\nContent-Length: ${VALID_JSON.length}\r\n`,
        VALID_JSON,
      ),
    ],
  },
  {
    name: 'NUL in the JSON body',
    pieces: [post('Content-Type: application/json\r\nContent-Length: 14\r\n', '{"title":"a\u0000"}')],
  },
  // Huge.
  {
    name: '1 MB of headers',
    pieces: [
      'GET /notes HTTP/1.1\r\nHost: gw\r\n',
      ...Array.from({ length: 64 }, (_, i) => `X-${i}: ${'h'.repeat(16_000)}\r\n`),
      '\r\n',
    ],
  },
  {
    name: '10000 tiny headers',
    pieces: ['GET /notes HTTP/1.1\r\nHost: gw\r\n', 'a: b\r\n'.repeat(10_000), '\r\n'],
  },
  {
    name: 'a 2 MB body',
    pieces: [
      post('Content-Type: application/json\r\nContent-Length: 2097152\r\n'),
      ...Array.from({ length: 32 }, () => 'x'.repeat(65_536)),
    ],
  },
  // Bodies the gateway must refuse before any queue work.
  {
    name: 'deeply nested JSON arrays',
    pieces: [
      post(
        `Content-Type: application/json\r\nContent-Length: ${2 * 12_000}\r\n`,
        `${'['.repeat(12_000)}${']'.repeat(12_000)}`,
      ),
    ],
  },
  {
    name: 'deeply nested JSON objects',
    pieces: [
      post(
        `Content-Type: application/json\r\nContent-Length: ${6 * 4000 + 1}\r\n`,
        `${'{"a":'.repeat(4000)}1${'}'.repeat(4000)}`,
      ),
    ],
  },
  {
    name: 'not JSON',
    pieces: [post('Content-Type: application/json\r\nContent-Length: 9\r\n', 'title=abc')],
  },
  {
    name: 'JSON with a BOM',
    pieces: [
      post(
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(`\ufeff${VALID_JSON}`)}\r\n`,
        `\ufeff${VALID_JSON}`,
      ),
    ],
  },
  {
    name: 'invalid UTF-8 in JSON',
    pieces: [
      Buffer.concat([
        // {"title":"<invalid bytes>"}: a lenient decoder would make this a valid note.
        Buffer.from(post('Content-Type: application/json\r\nContent-Length: 15\r\n')),
        Buffer.from('{"title":"'),
        Buffer.from([0xc3, 0x28, 0xff]),
        Buffer.from('"}'),
      ]),
    ],
  },
  {
    name: 'form content type',
    pieces: [
      post(
        `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${VALID_JSON.length}\r\n`,
        VALID_JSON,
      ),
    ],
  },
  { name: 'no content type', pieces: [post(`Content-Length: ${VALID_JSON.length}\r\n`, VALID_JSON)] },
  {
    name: 'multipart',
    pieces: [
      post(
        `Content-Type: multipart/form-data; boundary=x\r\nContent-Length: ${VALID_JSON.length}\r\n`,
        VALID_JSON,
      ),
    ],
  },
  {
    name: 'body on a GET',
    pieces: [
      `GET /notes HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: ${VALID_JSON.length}\r\n\r\n${VALID_JSON}`,
    ],
  },
  {
    name: 'slow body (one byte every 300 ms)',
    pieces: [
      post(`Content-Type: application/json\r\nContent-Length: ${VALID_JSON.length}\r\n`),
      ...VALID_JSON.split(''),
    ],
    gapMs: 300,
  },
];

/** Why an exchange is not a refusal (every answer 4xx, or no answer and a close), or undefined. */
function notRefused(name: string, x: Exchange): string | undefined {
  const bad = x.statuses.filter((s) => s < 400 || s >= 500);
  if (bad.length > 0) return `${name}: answered ${x.statuses.join(', ')}: ${x.text.slice(0, 200)}`;
  if (x.statuses.length === 0 && !x.closed) return `${name}: neither answered nor closed`;
  return undefined;
}

function assertRefused(name: string, x: Exchange): void {
  assert.equal(notRefused(name, x), undefined);
}

describe('HTTP abuse on a gateway', () => {
  const pki = usePki();

  test('every abusive request is answered 4xx or closed, on HTTP and HTTPS; none reaches the queue', async (t) => {
    const sys = await system(t, pki());
    const outcomes: string[] = [];
    const failures: string[] = [];
    for (const tls of [false, true]) {
      const port = tls ? sys.httpsPort : sys.httpPort;
      // Each case on its own connection, a few at a time.
      const results = await Promise.all(
        ABUSE.map(async (a) => ({
          a,
          x: await exchange(port, a.pieces, { tls, ...(a.gapMs ? { gapMs: a.gapMs } : {}) }),
        })),
      );
      for (const { a, x } of results) {
        const why = notRefused(`${tls ? 'https' : 'http'}: ${a.name}`, x);
        if (why !== undefined) failures.push(why);
        outcomes.push(`${tls ? 'https' : 'http'} ${a.name}: ${x.statuses.join(',') || 'closed'}`);
      }
    }
    // Not TLS on the HTTPS port, and a TLS handshake on the HTTP port.
    assertRefused(
      'plain HTTP to the HTTPS port',
      await exchange(sys.httpsPort, [
        `${post(`Content-Type: application/json\r\nContent-Length: ${VALID_JSON.length}\r\n`, VALID_JSON)}`,
      ]),
    );
    t.diagnostic(outcomes.join('\n'));
    assert.deepEqual(failures, [], 'every abusive request is refused');

    const res = await validPost(sys.httpPort);
    assert.equal(res, 201, 'a valid request is served after the abuse');
    assert.deepEqual(
      await jobCounts(sys, 1),
      { answered: 1, invalid: 0, tampered: 0, expired: 0 },
      'only the valid request reached the queue',
    );
    assert.equal(await sys.executed(), 1);
  });

  test('thousands of abusive connections: memory stays bounded, valid clients are served throughout', async (t) => {
    const sys = await system(t, pki());
    let valid = 0;
    for (let i = 0; i < 30; i++, valid++) assert.equal(await validPost(sys.httpPort), 201);
    await new Promise((r) => setTimeout(r, 500));
    const before = sys.rss();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, sys.rss())), 100);

    // A valid client keeps sending while the abuse goes on.
    let abusing = true;
    const validStatuses: number[] = [];
    const validClient = (async () => {
      while (abusing) {
        validStatuses.push(await validPost(sys.httpPort).catch(() => 0));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    // Many connections at once: 1000 slow-loris connections that never finish their headers,
    // held while the flood below runs; the gateway must cut every one of them.
    const HELD = 1000;
    const held = Promise.all(
      Array.from({ length: HELD }, (_, i) =>
        exchange(sys.httpPort, ['GET /notes HTTP/1.1\r\nHost: gw\r\nX-Slow: 1\r\n'], { waitMs: 15_000 }).then(
          (x) => notRefused(`held #${i}`, x),
        ),
      ),
    );
    const TOTAL = 3000;
    const CONCURRENCY = 64;
    const started = Date.now();
    const failures: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < TOTAL) {
          const i = next++;
          const a = ABUSE[i % ABUSE.length]!;
          const tls = i % 4 === 3;
          const x = await exchange(tls ? sys.httpsPort : sys.httpPort, a.pieces, {
            tls,
            quietMs: 100,
            ...(a.gapMs ? { gapMs: a.gapMs } : {}),
          });
          const why = notRefused(`#${i} ${tls ? 'https' : 'http'} ${a.name}`, x);
          if (why !== undefined) failures.push(why);
        }
      }),
    );
    const heldFailures = (await held).filter((w) => w !== undefined);
    abusing = false;
    await validClient;
    clearInterval(sampler);
    const abuseMs = Date.now() - started;
    await new Promise((r) => setTimeout(r, 1000));
    const after = sys.rss();
    const mb = (n: number) => Math.round(n / 1024 / 102.4) / 10;
    t.diagnostic(
      `${TOTAL} abusive connections and ${HELD} held at once in ${abuseMs} ms; gateway RSS ${mb(before)} MB before, ` +
        `${mb(peak)} MB peak, ${mb(after)} MB after; valid client: ${validStatuses.length} requests`,
    );

    assert.deepEqual(failures, [], 'every abusive connection was refused');
    assert.deepEqual(heldFailures, [], 'every held slow connection was cut');
    assert.ok(validStatuses.length >= 5, `the valid client sent ${validStatuses.length} requests`);
    assert.deepEqual(
      validStatuses.filter((s) => s !== 201),
      [],
      'every valid request during the abuse was served',
    );
    valid += validStatuses.length;
    // Generous bounds: a leak of even 64 KB per abusive connection would pass 190 MB here.
    assert.ok(after - before < 96 * 1024 * 1024, `RSS grew by ${mb(after - before)} MB`);
    assert.ok(peak - before < 256 * 1024 * 1024, `RSS peaked ${mb(peak - before)} MB above the start`);

    assert.equal(await validPost(sys.httpPort), 201, 'served after the abuse');
    valid += 1;
    assert.deepEqual(
      await jobCounts(sys, valid),
      { answered: valid, invalid: 0, tampered: 0, expired: 0 },
      'only the valid requests reached the queue',
    );
    assert.equal(await sys.executed(), valid);
  });
});

/**
 * The broker's job counts once `answered` reaches `expected` (or after 5 s): a worker counts a
 * job just after it sends the reply, so the client can have its answer a moment earlier.
 */
async function jobCounts(sys: System, expected: number): Promise<Record<string, number>> {
  const worker = sys.broker.workers.get('gw1')!;
  for (let i = 0; i < 100 && worker.counts.answered < expected; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  return { ...worker.counts };
}

/** A valid POST /notes from the valid client's address; resolves to the status. */
function validPost(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        localAddress: '127.0.0.1',
        method: 'POST',
        path: '/notes',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': VALID_JSON.length },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(VALID_JSON);
  });
}
