// The core's HTTPS listener: mutual TLS with broker certs only, and the execute protocol.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { notesApplication } from '../../core/app/notes/index.js';
import type { Application } from '../../core/application.js';
import { startCore } from '../../core/server.js';
import { BUDGET_HEADER } from '../../lib/core-protocol.js';
import { silentLogger } from '../../lib/log.js';
import { startTestCore, testCoreConfig } from '../helpers/core.js';
import { makeEnvelope } from '../helpers/envelope.js';
import { notes } from '../helpers/execute.js';
import { httpsJson, type TlsClient } from '../helpers/https.js';
import { captureLogger } from '../helpers/log.js';
import { TEST_PG_URL, useTestSchema } from '../helpers/pg.js';
import { issueClientCert, usePki, type CertFiles } from '../helpers/pki.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

describe('core server', () => {
  const pki = usePki({ brokers: ['b1'], gateways: ['gw1'] });
  let impostor: CertFiles;
  before(async () => {
    // From the internal CA, so it passes the handshake, but not issued to a broker.
    impostor = await issueClientCert(pki(), pki().ca, 'impostor', '/CN=b9/OU=nonstop-admin/O=nonstop');
  });

  const caOnly = (): TlsClient => ({ ca: pki().pem(pki().ca).cert });

  function executeRequest(body: unknown, key?: string) {
    const id = typeof body === 'object' && body !== null ? (body as { id?: unknown }).id : undefined;
    return {
      method: 'POST',
      path: '/v1/execute',
      headers: { 'content-type': 'application/json', 'idempotency-key': key ?? String(id) },
      body,
    };
  }

  /** What a client sees when the core refuses its cert in the handshake (TLS 1.3: on first read). */
  const refusedByTls = (err: unknown) =>
    err instanceof Error && /^(ECONNRESET|ERR_SSL_)/.test(String((err as { code?: unknown }).code));

  const errorCode = (body: unknown) => (body as { error?: { code?: string } }).error?.code;

  describe('on PGlite', () => {
    const client = (): TlsClient => ({ ...caOnly(), ...pki().pem(pki().brokers.b1!) });

    test('listens on the port it was given (0: any) and reports the real one', async (t) => {
      const core = await startTestCore(t, pki(), 'pglite');
      assert.equal(core.address.host, '127.0.0.1');
      assert.ok(core.address.port > 0);
      const health = await httpsJson(core.address, client(), { path: '/healthz' });
      assert.deepEqual([health.status, health.body], [200, { ok: true }]);
    });

    test('a broker cert executes; a repeat is replayed with x-nonstop-replayed', async (t) => {
      const core = await startTestCore(t, pki(), 'pglite');
      const envelope = makeEnvelope(notes.create({ title: 'via https' }));
      const first = await httpsJson(core.address, client(), executeRequest(envelope));
      assert.equal(first.status, 200);
      const reply = first.body as {
        status: number;
        headers: Record<string, string>;
        body: { title: string; id: string };
      };
      assert.equal(reply.status, 201);
      assert.equal(reply.body.title, 'via https');
      assert.equal(reply.headers.location, `/notes/${reply.body.id}`);
      assert.equal(first.headers['x-nonstop-replayed'], undefined);

      const again = await httpsJson(core.address, client(), executeRequest(envelope));
      assert.equal(again.status, 200);
      assert.equal(again.headers['x-nonstop-replayed'], '1');
      assert.deepEqual(again.body, first.body);
    });

    test('each request is logged with id, route, status, duration and replay, never the body', async (t) => {
      const log = captureLogger();
      const core = await startTestCore(t, pki(), 'pglite', { logger: log.logger });
      const envelope = makeEnvelope(notes.create({ title: 'SECRET-TITLE-4711', text: 'SECRET-TEXT-4711' }));
      await httpsJson(core.address, client(), executeRequest(envelope));
      await httpsJson(core.address, client(), executeRequest(envelope));
      const executed = log.lines().filter((l) => l.msg === 'executed');
      assert.deepEqual(
        executed.map((l) => [l.requestId, l.route, l.status, l.appStatus, l.replayed, l.broker]),
        [
          [envelope.id, 'notes.create', 200, 201, false, 'b1'],
          [envelope.id, 'notes.create', 200, 201, true, 'b1'],
        ],
      );
      assert.ok(executed.every((l) => typeof l.durationMs === 'number'));
      assert.doesNotMatch(log.text(), /SECRET-/);
    });

    test('a gateway cert (public CA) is refused during the TLS handshake', async (t) => {
      const log = captureLogger();
      const core = await startTestCore(t, pki(), 'pglite', { logger: log.logger });
      const gateway = { ...caOnly(), ...pki().pem(pki().gateways.gw1!) };
      const envelope = makeEnvelope(notes.create({ title: 'from a gateway' }));
      await assert.rejects(httpsJson(core.address, gateway, executeRequest(envelope)), refusedByTls);
      const rejected = log.lines().filter((l) => l.msg === 'TLS handshake rejected');
      assert.equal(rejected.length, 1);
      assert.equal(rejected[0]!.reason, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      assert.equal(log.lines().filter((l) => l.msg === 'executed').length, 0);
      // The refusal left nothing behind: the id is still new for a broker.
      const ok = await httpsJson(core.address, client(), executeRequest(envelope));
      assert.equal(ok.status, 200);
      assert.equal(ok.headers['x-nonstop-replayed'], undefined);
    });

    test('a client without a cert is refused', async (t) => {
      const core = await startTestCore(t, pki(), 'pglite');
      await assert.rejects(httpsJson(core.address, caOnly(), { path: '/healthz' }), refusedByTls);
    });

    test('an internal-CA cert without the broker unit gets 403', async (t) => {
      const core = await startTestCore(t, pki(), 'pglite');
      const other = { ...caOnly(), ...pki().pem(impostor) };
      const envelope = makeEnvelope(notes.create({ title: 'impostor' }));
      const answer = await httpsJson(core.address, other, executeRequest(envelope));
      assert.equal(answer.status, 403);
      assert.equal(errorCode(answer.body), 'NONSTOP_ERR_UNAUTHENTICATED');
      const health = await httpsJson(core.address, other, { path: '/healthz' });
      assert.equal(health.status, 403);
    });

    test('malformed execute requests get 400, 404, 413 or 504 with a JSON error', async (t) => {
      const core = await startTestCore(t, pki(), 'pglite');
      const envelope = makeEnvelope(notes.create({ title: 'x' }));
      const cases: [string, ReturnType<typeof executeRequest>, number, string][] = [
        ['malformed JSON', { ...executeRequest('{"v":1,', envelope.id) }, 400, 'NONSTOP_ERR_MALFORMED_JSON'],
        ['key mismatch', executeRequest(envelope, randomUUID()), 400, 'NONSTOP_ERR_BAD_REQUEST'],
        ['not an envelope', executeRequest({ id: envelope.id, v: 1 }), 400, 'NONSTOP_ERR_BAD_REQUEST'],
        [
          'not JSON content',
          {
            ...executeRequest(envelope),
            headers: { 'content-type': 'text/plain', 'idempotency-key': envelope.id },
          },
          400,
          'NONSTOP_ERR_BAD_REQUEST',
        ],
        [
          'unknown route',
          executeRequest({ ...envelope, route: 'notes.archive' }),
          404,
          'NONSTOP_ERR_ROUTE_UNKNOWN',
        ],
        [
          'too large',
          executeRequest({ ...envelope, body: { title: 'x', text: 'a'.repeat(1024 * 1024) } }),
          413,
          'NONSTOP_ERR_BODY_TOO_LARGE',
        ],
        [
          'deadline passed',
          executeRequest({ ...envelope, deadline: Date.now() - 1000 }),
          504,
          'NONSTOP_ERR_DEADLINE_EXCEEDED',
        ],
      ];
      for (const [what, request, status, code] of cases) {
        const answer = await httpsJson(core.address, client(), request);
        assert.equal(answer.status, status, what);
        assert.equal(errorCode(answer.body), code, what);
      }
      // None of them executed anything: the id is still new.
      const ok = await httpsJson(core.address, client(), executeRequest(envelope));
      assert.equal(ok.status, 200);
      assert.equal(ok.headers['x-nonstop-replayed'], undefined);
    });

    test("a budget counts from the core's clock: a deadline stamped in a clock 20 s behind executes", async (t) => {
      const core = await startTestCore(t, pki(), 'pglite');
      // In a queue clock 20 s behind the core's: by the core's clock the deadline passed 10 s ago.
      const receivedAt = Date.now() - 20_000;
      const envelope = makeEnvelope({
        ...notes.create({ title: 'skewed' }),
        receivedAt,
        deadline: receivedAt + 10_000,
      });
      const budget = (ms: string) => {
        const r = executeRequest(envelope);
        return { ...r, headers: { ...r.headers, [BUDGET_HEADER]: ms } };
      };
      const without = await httpsJson(core.address, client(), executeRequest(envelope));
      assert.deepEqual([without.status, errorCode(without.body)], [504, 'NONSTOP_ERR_DEADLINE_EXCEEDED']);
      const bad = await httpsJson(core.address, client(), budget('soon'));
      assert.deepEqual([bad.status, errorCode(bad.body)], [400, 'NONSTOP_ERR_BAD_REQUEST']);
      const ok = await httpsJson(core.address, client(), budget('9000'));
      assert.equal(ok.status, 200);
      assert.equal((ok.body as { status: number }).status, 201);
    });

    test('close() stops accepting but lets an in-flight request finish first', async (t) => {
      let started!: () => void;
      const handlerStarted = new Promise<void>((resolve) => (started = resolve));
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const application: Application = {
        ...notesApplication,
        handlers: {
          ...notesApplication.handlers,
          'notes.create': async (ctx) => {
            started();
            await released;
            return notesApplication.handlers['notes.create']!(ctx);
          },
        },
      };
      const core = await startTestCore(t, pki(), 'pglite', { application });
      const envelope = makeEnvelope(notes.create({ title: 'in flight' }));
      const answer = httpsJson(core.address, client(), executeRequest(envelope));
      await handlerStarted;
      let closed = false;
      const closing = core.close().then(() => (closed = true));
      await assert.rejects(httpsJson(core.address, client(), { path: '/healthz' }), { code: 'ECONNREFUSED' });
      assert.equal(closed, false);
      release();
      const result = await answer;
      await closing;
      assert.equal(result.status, 200);
      assert.equal((result.body as { status: number }).status, 201);
    });

    test('the server name is checked against the core cert', async (t) => {
      const core = await startTestCore(t, pki(), 'pglite');
      await assert.rejects(
        httpsJson(core.address, client(), { path: '/healthz', servername: 'elsewhere' }),
        /elsewhere|altnames/,
      );
    });
  });

  describe('on PostgreSQL', () => {
    const client = (): TlsClient => ({ ...caOnly(), ...pki().pem(pki().brokers.b1!) });

    test('executes and replays over HTTPS', async (t) => {
      const core = await startTestCore(t, pki(), 'postgres');
      const envelope = makeEnvelope(notes.create({ title: 'on postgres' }));
      const first = await httpsJson(core.address, client(), executeRequest(envelope));
      const again = await httpsJson(core.address, client(), executeRequest(envelope));
      assert.equal((first.body as { status: number }).status, 201);
      assert.equal(again.headers['x-nonstop-replayed'], '1');
      assert.deepEqual(again.body, first.body);
    });

    test('a database that goes away gives a retryable 503, and healthz says so', async (t) => {
      const pg = new URL(TEST_PG_URL);
      const proxy = await startTcpProxy({ host: pg.hostname, port: Number(pg.port || 5432) });
      t.after(() => proxy.cut());
      const { schema } = await useTestSchema(t);
      pg.host = `127.0.0.1:${proxy.port}`;
      const config = testCoreConfig(pki(), { url: pg.href, schema, poolSize: 2 });
      const core = await startCore(config, silentLogger());
      t.after(() => core.close());
      assert.equal((await httpsJson(core.address, client(), { path: '/healthz' })).status, 200);

      await proxy.cut();
      const envelope = makeEnvelope(notes.create({ title: 'nowhere to go' }));
      const answer = await httpsJson(core.address, client(), executeRequest(envelope));
      assert.equal(answer.status, 503);
      assert.equal(errorCode(answer.body), 'NONSTOP_ERR_DATABASE_UNAVAILABLE');
      const health = await httpsJson(core.address, client(), { path: '/healthz' });
      assert.equal(health.status, 503);
    });
  });
});
