// The gateway as a browser meets it: HEAD, OPTIONS and CORS preflights answered by the gateway,
// forms, text and multipart bodies decoded into the envelope, cookies only where a route takes
// them, and replies of any content type with cookies, security headers and 304s. A BullMQ worker
// in the test stands in for the broker: it records each envelope and answers by its path.
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { Worker, type Job } from 'bullmq';
import { replyKey, queueName, type Envelope, type Reply } from '../../lib/envelope.js';
import { tempDir, writeJson } from '../helpers/files.js';
import { startTestGateway, untilReady } from '../helpers/gateway.js';
import { REDIS_HOST, REDIS_PORT, testRedis } from '../helpers/redis.js';
import { addReply } from '../helpers/replies.js';

const ORIGIN = 'https://app.example.com';
const HTML = '<!doctype html><title>entries</title><p>ünïcode</p>';

const routes = {
  kind: 'routes',
  cors: { origins: [ORIGIN], headers: ['x-csrf-token'], credentials: true, maxAgeSeconds: 120 },
  routes: [
    { name: 'site.page', method: 'GET', path: '/site', cookies: ['session'], schema: {} },
    {
      name: 'site.entries',
      method: 'POST',
      path: '/site/entries',
      bodyTypes: ['form', 'multipart', 'json'],
      cookies: ['session'],
      multipart: { maxParts: 3, maxFileBytes: 1024, maxFieldBytes: 64 },
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            title: { type: 'string', maxLength: 64 },
            tags: { type: 'array', maxItems: 4, items: { type: 'string', maxLength: 16 } },
            photo: {
              type: 'object',
              additionalProperties: false,
              properties: {
                filename: { type: 'string', maxLength: 255 },
                type: { enum: ['image/png'] },
                size: { type: 'integer', maximum: 1024 },
                base64: { type: 'string', maxLength: 2048 },
              },
            },
          },
        },
      },
    },
    {
      name: 'site.memo',
      method: 'POST',
      path: '/site/memo',
      bodyTypes: ['text'],
      schema: { body: { type: 'string', maxLength: 100 } },
    },
    { name: 'api.open', method: 'GET', path: '/api', cors: false, schema: {} },
  ],
};

interface System {
  readonly url: string;
  /** Every envelope the stand-in broker took, in order. */
  readonly seen: Envelope[];
}

async function system(t: TestContext): Promise<System> {
  const redis = testRedis(t);
  const dir = tempDir(t);
  const routesFile = writeJson(dir, 'routes.json', routes);
  const { url } = await startTestGateway(t, { prefix: redis.prefix, overrides: { routes: routesFile } });
  const seen: Envelope[] = [];
  const answer = (e: Envelope): Omit<Reply, 'id'> =>
    e.path === '/site'
      ? {
          status: 200,
          headers: {
            etag: '"v1"',
            'last-modified': 'Tue, 01 Dec 2026 10:00:00 GMT',
            'cache-control': 'private, max-age=0',
            'content-security-policy': "default-src 'self'",
            'x-evil': 'dropped',
            connection: 'close',
          },
          body: null,
          content: { type: 'text/html; charset=utf-8', base64: Buffer.from(HTML).toString('base64') },
          cookies: ['session=abc; Path=/site; HttpOnly; SameSite=Lax', 'theme=dark; Path=/site'],
        }
      : e.path === '/api'
        ? { status: 200, headers: {}, body: { ok: true } }
        : { status: 303, headers: { location: '/site' }, body: null };
  const worker = new Worker(
    queueName('gw1'),
    async (job: Job) => {
      const e = job.data as Envelope;
      seen.push(e);
      const reply: Reply = { id: e.id, ...answer(e) };
      await addReply(redis.client, replyKey(redis.prefix, e.gatewayId, e.replyTo), reply);
    },
    { connection: { host: REDIS_HOST, port: REDIS_PORT }, prefix: redis.prefix },
  );
  t.after(() => worker.close());
  await untilReady(url);
  return { url, seen };
}

describe('the gateway as a browser meets it', () => {
  test('an HTML reply with two cookies, its security headers, and nothing it may not set', async (t) => {
    const s = await system(t);
    const res = await fetch(`${s.url}/site`, { headers: { cookie: 'session=abc' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(await res.text(), HTML);
    assert.deepEqual(res.headers.getSetCookie(), [
      'session=abc; Path=/site; HttpOnly; SameSite=Lax',
      'theme=dark; Path=/site',
    ]);
    assert.equal(res.headers.get('content-security-policy'), "default-src 'self'");
    assert.equal(res.headers.get('cache-control'), 'private, max-age=0', "the application's, not no-store");
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('x-evil'), null);
    assert.notEqual(res.headers.get('connection'), 'close', 'hop-by-hop headers stay the gateway’s');
    assert.equal(s.seen[0]!.headers.cookie, 'session=abc', 'the route’s cookie reached the application');
  });

  test('HEAD runs the GET route and sends its headers without a body; 304 for what the client holds', async (t) => {
    const s = await system(t);
    const get = await fetch(`${s.url}/site`);
    const head = await fetch(`${s.url}/site`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    assert.equal(head.headers.get('content-length'), get.headers.get('content-length'));
    assert.equal(head.headers.get('etag'), '"v1"');
    assert.equal(s.seen[1]!.method, 'GET', 'the application sees a GET');

    const cases: [Record<string, string>, number][] = [
      [{ 'if-none-match': '"v1"' }, 304],
      [{ 'if-none-match': 'W/"v0", W/"v1"' }, 304],
      [{ 'if-none-match': '*' }, 304],
      [{ 'if-none-match': '"v2"' }, 200],
      [{ 'if-modified-since': 'Tue, 01 Dec 2026 10:00:00 GMT' }, 304],
      [{ 'if-modified-since': 'Mon, 30 Nov 2026 10:00:00 GMT' }, 200],
      // If-None-Match decides when both are there.
      [{ 'if-none-match': '"v2"', 'if-modified-since': 'Wed, 02 Dec 2026 10:00:00 GMT' }, 200],
    ];
    for (const [headers, status] of cases) {
      const res = await fetch(`${s.url}/site`, { headers });
      assert.equal(res.status, status, JSON.stringify(headers));
      if (status === 304) {
        assert.equal(await res.text(), '');
        assert.equal(res.headers.get('etag'), '"v1"');
        assert.equal(res.headers.get('cache-control'), 'private, max-age=0');
      }
    }
  });

  test('OPTIONS and CORS preflights are answered by the gateway; nothing is queued', async (t) => {
    const s = await system(t);
    const plain = await fetch(`${s.url}/site/entries`, { method: 'OPTIONS' });
    assert.equal(plain.status, 204);
    assert.equal(plain.headers.get('allow'), 'POST, OPTIONS');
    assert.equal(
      (await fetch(`${s.url}/site`, { method: 'OPTIONS' })).headers.get('allow'),
      'GET, HEAD, OPTIONS',
    );
    assert.equal((await fetch(`${s.url}/nowhere`, { method: 'OPTIONS' })).status, 404);

    const preflight = (origin: string, headers: Record<string, string> = {}) =>
      fetch(`${s.url}/site/entries`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', ...headers },
      });
    const ok = await preflight(ORIGIN, { 'access-control-request-headers': 'Content-Type, X-CSRF-Token' });
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get('access-control-allow-origin'), ORIGIN);
    assert.equal(ok.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(ok.headers.get('access-control-allow-methods'), 'POST');
    assert.equal(ok.headers.get('access-control-allow-headers'), 'content-type, x-csrf-token');
    assert.equal(ok.headers.get('access-control-max-age'), '120');
    assert.match(ok.headers.get('vary') ?? '', /Origin/);

    for (const [res, why] of [
      [await preflight('https://evil.example'), /origin https:\/\/evil.example is not allowed/],
      [await preflight(ORIGIN, { 'access-control-request-headers': 'x-other' }), /header x-other/],
      [
        await fetch(`${s.url}/site/entries`, {
          method: 'OPTIONS',
          headers: { origin: ORIGIN, 'access-control-request-method': 'DELETE' },
        }),
        /takes no cross-origin|method DELETE/,
      ],
      [
        await fetch(`${s.url}/api`, {
          method: 'OPTIONS',
          headers: { origin: ORIGIN, 'access-control-request-method': 'GET' },
        }),
        /takes no cross-origin requests/,
      ],
    ] as const) {
      assert.equal(res.status, 403);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'NONSTOP_ERR_CORS_REFUSED');
      assert.match(body.error.message, why);
      assert.equal(res.headers.get('access-control-allow-origin'), null);
    }
    assert.equal(s.seen.length, 0, 'no OPTIONS request reached the queue');

    // The answer to the real request carries the CORS headers, merged with the application's Vary.
    const real = await fetch(`${s.url}/site`, { headers: { origin: ORIGIN } });
    assert.equal(real.headers.get('access-control-allow-origin'), ORIGIN);
    assert.equal(real.headers.get('access-control-allow-credentials'), 'true');
    const foreign = await fetch(`${s.url}/site`, { headers: { origin: 'https://evil.example' } });
    assert.equal(foreign.status, 200, 'served, but a browser will not let that page read it');
    assert.equal(foreign.headers.get('access-control-allow-origin'), null);
    assert.match(foreign.headers.get('vary') ?? '', /Origin/, 'a cache keys the answer by Origin');
    assert.match((await fetch(`${s.url}/site`)).headers.get('vary') ?? '', /Origin/, 'also without one');
    const off = await fetch(`${s.url}/api`, { headers: { origin: ORIGIN } });
    assert.equal(off.headers.get('access-control-allow-origin'), null, 'cors: false on the route');
  });

  test('form, text and multipart bodies arrive decoded; the route’s cookie alone is forwarded', async (t) => {
    const s = await system(t);
    const post = (body: string | Buffer | FormData, headers: Record<string, string> = {}) =>
      fetch(`${s.url}/site/entries`, { method: 'POST', body, headers, redirect: 'manual' });

    // A site-wide cookie the route does not take is dropped, not forwarded and not refused.
    const form = await post('title=a+b%21&tags=x&tags=y', {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: 'tracker=1; session=abc; _ga=GA1.2',
    });
    assert.equal(form.status, 303);
    assert.equal(form.headers.get('location'), '/site');
    assert.deepEqual(s.seen[0]!.body, { title: 'a b!', tags: ['x', 'y'] });
    assert.equal(s.seen[0]!.bodyType, 'form');
    assert.equal(s.seen[0]!.headers.cookie, 'session=abc');

    const memo = await fetch(`${s.url}/site/memo`, {
      method: 'POST',
      body: 'just words',
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      redirect: 'manual',
    });
    assert.equal(memo.status, 303);
    assert.equal(s.seen[1]!.body, 'just words');
    assert.equal(s.seen[1]!.bodyType, 'text');

    const data = new FormData();
    data.append('title', 'with a photo');
    data.append(
      'photo',
      new Blob([Buffer.from([0, 1, 2, 255])], { type: 'image/png' }),
      'C:\\fakepath\\me.png',
    );
    assert.equal((await post(data)).status, 303);
    assert.equal(s.seen[2]!.bodyType, 'multipart');
    assert.deepEqual(s.seen[2]!.body, {
      title: 'with a photo',
      photo: { filename: 'me.png', type: 'image/png', size: 4, base64: 'AAEC/w==' },
    });
    assert.equal(s.seen[2]!.headers.cookie, undefined, 'no cookie sent, none forwarded');

    // JSON still works, and has no bodyType in the envelope.
    await post(JSON.stringify({ title: 'json' }), { 'content-type': 'application/json' });
    assert.equal(s.seen[3]!.bodyType, undefined);
  });

  test('bad bodies and malformed cookies get a clear 4xx; nothing is queued', async (t) => {
    const s = await system(t);
    const post = (body: string | Buffer | FormData, headers: Record<string, string>) =>
      fetch(`${s.url}/site/entries`, { method: 'POST', body, headers });
    const memo = (body: string, type: string) =>
      fetch(`${s.url}/site/memo`, { method: 'POST', body, headers: { 'content-type': type } });
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const multipart = (parts: string, boundary = 'XyZ') =>
      post(parts.replace(/\n/g, '\r\n'), { 'content-type': `multipart/form-data; boundary=${boundary}` });
    const part = (name: string, value: string, filename?: string) =>
      `--XyZ\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\n\n${value}\n`;

    const cases: [Promise<Response>, number, string, RegExp][] = [
      [post('title=%zz', form), 400, 'NONSTOP_ERR_MALFORMED_BODY', /percent-encoding/],
      [post(Buffer.from([0x74, 0x3d, 0xff]), form), 400, 'NONSTOP_ERR_MALFORMED_BODY', /UTF-8/],
      [
        post('a=1', { ...form, cookie: 'session=abc; =x' }),
        400,
        'NONSTOP_ERR_BAD_REQUEST',
        /Malformed Cookie/,
      ],
      [
        post('<x/>', { 'content-type': 'application/xml' }),
        415,
        'NONSTOP_ERR_UNSUPPORTED_MEDIA_TYPE',
        /takes application\/x-www-form-urlencoded, multipart\/form-data, application\/json$/,
      ],
      [post('x', { 'content-type': 'text/plain' }), 415, 'NONSTOP_ERR_UNSUPPORTED_MEDIA_TYPE', /takes/],
      [memo('x', 'text/plain; charset=latin1'), 400, 'NONSTOP_ERR_MALFORMED_BODY', /UTF-8/],
      [
        memo(JSON.stringify('x'), 'application/json'),
        415,
        'NONSTOP_ERR_UNSUPPORTED_MEDIA_TYPE',
        /takes text\/plain/,
      ],
      [post('x', { 'content-type': 'multipart/form-data' }), 400, 'NONSTOP_ERR_MALFORMED_BODY', /boundary/],
      [
        multipart(`${part('a', '1')}${part('b', '2')}${part('c', '3')}${part('d', '4')}--XyZ--\n`),
        400,
        'NONSTOP_ERR_MALFORMED_BODY',
        /more than 3 parts/,
      ],
      [
        multipart(`${part('photo', 'x'.repeat(1025), 'big.bin')}--XyZ--\n`),
        400,
        'NONSTOP_ERR_MALFORMED_BODY',
        /exceeds 1024 bytes/,
      ],
      [
        multipart(`${part('title', 'y'.repeat(65))}--XyZ--\n`),
        400,
        'NONSTOP_ERR_MALFORMED_BODY',
        /exceeds 64 bytes/,
      ],
      [
        multipart(`--XyZ\nContent-Disposition: form-data; name="a"\n\nno end`),
        400,
        'NONSTOP_ERR_MALFORMED_BODY',
        /ends inside a part/,
      ],
      [
        multipart(`--XyZ\nContent-Type: text/plain\n\nv\n--XyZ--\n`),
        400,
        'NONSTOP_ERR_MALFORMED_BODY',
        /needs a Content-Disposition/,
      ],
    ];
    for (const [pending, status, errorCode, message] of cases) {
      const res = await pending;
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal(body.error.code, errorCode);
      assert.match(body.error.message, message);
    }
    assert.equal(s.seen.length, 0, 'no refused request reached the queue');
    // A route that takes no cookies gets none of those sent.
    await fetch(`${s.url}/api`, { headers: { cookie: 'session=abc' } });
    assert.equal(s.seen.length, 1);
    assert.equal(s.seen[0]!.headers.cookie, undefined, 'no cookie reaches a route that takes none');
  });
});
