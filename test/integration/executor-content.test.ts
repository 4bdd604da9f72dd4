// A handler's non-JSON content and cookies, on PostgreSQL and on PGlite: stored with the request
// id and replayed byte for byte; a handler answer that breaks their rules is a handler failure.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { notesApplication } from '../../core/app/notes/index.js';
import type { AppResponse, Application } from '../../core/application.js';
import { Executor } from '../../core/executor.js';
import { isNonstopError } from '../../lib/errors.js';
import { MAX_REPLY_COOKIES } from '../../lib/envelope.js';
import { silentLogger } from '../../lib/log.js';
import { DATABASE_KINDS, openTestDatabase } from '../helpers/core.js';
import { makeEnvelope } from '../helpers/envelope.js';
import { notes } from '../helpers/execute.js';

const answering = (answer: AppResponse): Application => ({
  ...notesApplication,
  handlers: { ...notesApplication.handlers, 'notes.list': () => Promise.resolve(answer) },
});

const handlerFailed = (err: unknown) => isNonstopError(err) && err.code === 'NONSTOP_ERR_HANDLER_FAILED';

for (const kind of DATABASE_KINDS) {
  describe(`content and cookies on ${kind}`, () => {
    test('HTML and two cookies are stored and replayed identically', async (t) => {
      const db = await openTestDatabase(t, kind);
      const app = answering({
        status: 200,
        headers: { 'Cache-Control': 'no-store' },
        content: { type: 'text/html; charset=utf-8', data: '<p>héllo</p>' },
        cookies: ['a=1; HttpOnly', 'b=2; Path=/'],
      });
      const executor = new Executor(db, app, silentLogger());
      const envelope = makeEnvelope(notes.list());
      const first = await executor.execute(envelope);
      assert.deepEqual(first.response, {
        status: 200,
        headers: { 'cache-control': 'no-store' },
        body: null,
        content: { type: 'text/html; charset=utf-8', base64: Buffer.from('<p>héllo</p>').toString('base64') },
        cookies: ['a=1; HttpOnly', 'b=2; Path=/'],
      });
      const again = await executor.execute(envelope);
      assert.equal(again.replayed, true);
      assert.deepEqual(again.response, first.response);
    });

    test('binary content round-trips byte for byte', async (t) => {
      const db = await openTestDatabase(t, kind);
      const bytes = new Uint8Array([0, 255, 1, 254, 0, 0, 10, 13]);
      const executor = new Executor(
        db,
        answering({ status: 200, content: { type: 'image/png', data: bytes } }),
        silentLogger(),
      );
      const envelope = makeEnvelope(notes.list());
      await executor.execute(envelope);
      const again = await executor.execute(envelope);
      assert.deepEqual(Buffer.from(again.response.content!.base64, 'base64'), Buffer.from(bytes));
      assert.equal(again.response.cookies, undefined);
    });

    for (const [what, answer] of [
      ['a cookie with a line break', { status: 200, cookies: ['a=1\r\nx-evil: 1'] }],
      [
        'too many cookies',
        { status: 200, cookies: Array.from({ length: MAX_REPLY_COOKIES + 1 }, (_, i) => `c${i}=1`) },
      ],
      ['a cookie too long', { status: 200, cookies: [`a=${'x'.repeat(5000)}`] }],
      ['content with a type that is not a media type', { status: 200, content: { type: 'html', data: 'x' } }],
      [
        'both a body and content',
        { status: 200, body: { a: 1 }, content: { type: 'text/plain', data: 'x' } },
      ],
      ['a set-cookie header', { status: 200, headers: { 'set-cookie': 'a=1' } }],
    ] as const) {
      test(`${what}: a handler failure, nothing stored`, async (t) => {
        const db = await openTestDatabase(t, kind);
        const executor = new Executor(db, answering(answer), silentLogger());
        await assert.rejects(executor.execute(makeEnvelope(notes.list())), handlerFailed);
        const { rows } = await db.query('SELECT count(*)::int AS n FROM nonstop_requests');
        assert.equal(rows[0]?.n, 0);
      });
    }
  });
}
