// Exactly-once execution, on PostgreSQL (own schema) and on PGlite.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { notesApplication } from '../../core/app/notes/index.js';
import type { Application } from '../../core/application.js';
import type { Database } from '../../core/db/database.js';
import { Executor } from '../../core/executor.js';
import { keyedId } from '../helpers/idempotency.js';
import { isNonstopError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { DATABASE_KINDS, openTestDatabase } from '../helpers/core.js';
import { makeEnvelope } from '../helpers/envelope.js';
import { notes } from '../helpers/execute.js';

async function count(db: Database, table: 'notes' | 'nonstop_requests'): Promise<number> {
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${table}`);
  return rows[0]?.n as number;
}

const failsWith = (code: string, status: number) => (err: unknown) =>
  isNonstopError(err) && err.code === `NONSTOP_ERR_${code}` && err.status === status;

/** The notes app whose create handler writes a note and then fails. */
const failingApp: Application = {
  ...notesApplication,
  handlers: {
    ...notesApplication.handlers,
    'notes.create': async (ctx) => {
      await ctx.tx.query(
        `INSERT INTO notes (id, title) VALUES ('0190a0b0-0000-7000-8000-000000000001', 'half')`,
      );
      throw new Error('disk on fire');
    },
  },
};

for (const kind of DATABASE_KINDS) {
  describe(`executor on ${kind}`, () => {
    test('a repeated request id gets the stored response, marked replayed, and changes nothing', async (t) => {
      const db = await openTestDatabase(t, kind);
      const executor = new Executor(db, notesApplication, silentLogger());
      const envelope = makeEnvelope(notes.create({ title: 'once' }));
      const first = await executor.execute(envelope);
      const second = await executor.execute(envelope);
      assert.equal(first.replayed, false);
      assert.equal(second.replayed, true);
      assert.deepEqual(second.response, first.response);
      assert.equal(await count(db, 'notes'), 1);
      assert.equal(await count(db, 'nonstop_requests'), 1);
    });

    test('ten concurrent deliveries of one id have exactly one effect', async (t) => {
      const db = await openTestDatabase(t, kind);
      const executor = new Executor(db, notesApplication, silentLogger());
      const envelope = makeEnvelope(notes.create({ title: 'concurrent' }));
      const results = await Promise.all(Array.from({ length: 10 }, () => executor.execute(envelope)));
      assert.equal(results.filter((r) => !r.replayed).length, 1);
      for (const r of results) assert.deepEqual(r.response, results[0]!.response);
      assert.equal(results[0]!.response.status, 201);
      assert.equal(await count(db, 'notes'), 1);
      assert.equal(await count(db, 'nonstop_requests'), 1);
    });

    test('a definite 4xx answer is stored and replayed like any other', async (t) => {
      const db = await openTestDatabase(t, kind);
      const executor = new Executor(db, notesApplication, silentLogger());
      const envelope = makeEnvelope(notes.create({ title: '' }));
      const first = await executor.execute(envelope);
      assert.equal(first.response.status, 400);
      const again = await executor.execute(envelope);
      assert.equal(again.replayed, true);
      assert.deepEqual(again.response, first.response);
      assert.equal(await count(db, 'nonstop_requests'), 1);
    });

    test('a request past its deadline is not executed: 504, nothing recorded', async (t) => {
      const db = await openTestDatabase(t, kind);
      const executor = new Executor(db, notesApplication, silentLogger());
      const envelope = makeEnvelope({ ...notes.create({ title: 'late' }), deadline: Date.now() - 1 });
      await assert.rejects(executor.execute(envelope), failsWith('DEADLINE_EXCEEDED', 504));
      assert.equal(await count(db, 'notes'), 0);
      assert.equal(await count(db, 'nonstop_requests'), 0);
    });

    test('a handler that throws is rolled back: 500, no idempotency row, and a retry runs again', async (t) => {
      const db = await openTestDatabase(t, kind);
      const envelope = makeEnvelope(notes.create({ title: 'fails' }));
      const failing = new Executor(db, failingApp, silentLogger());
      await assert.rejects(failing.execute(envelope), failsWith('HANDLER_FAILED', 500));
      assert.equal(await count(db, 'notes'), 0);
      assert.equal(await count(db, 'nonstop_requests'), 0);

      const retry = await new Executor(db, notesApplication, silentLogger()).execute(envelope);
      assert.equal(retry.replayed, false);
      assert.equal(retry.response.status, 201);
      assert.equal(await count(db, 'notes'), 1);
    });

    test('a request id reused by another gateway does not reveal the stored response', async (t) => {
      const db = await openTestDatabase(t, kind);
      const executor = new Executor(db, notesApplication, silentLogger());
      const envelope = makeEnvelope(notes.create({ title: 'mine' }));
      await executor.execute(envelope);
      await assert.rejects(
        executor.execute({ ...envelope, gatewayId: 'gw2' }),
        failsWith('IDEMPOTENCY_CONFLICT', 409),
      );
      await assert.rejects(
        executor.execute({ ...envelope, ...notes.list() }),
        failsWith('IDEMPOTENCY_CONFLICT', 409),
      );
      assert.equal(await count(db, 'notes'), 1);
    });

    test('a keyed id replays to any gateway for the same request, 422 for another', async (t) => {
      const db = await openTestDatabase(t, kind);
      const executor = new Executor(db, notesApplication, silentLogger());
      const keyed = { id: keyedId(`key-${kind}`), idempotent: true };
      const envelope = makeEnvelope({ ...notes.create({ title: 'keyed', tags: ['a'] }), ...keyed });
      const first = await executor.execute(envelope);
      assert.equal(first.replayed, false);
      // Another gateway, another client address, keys in another order: the same request.
      const other = await executor.execute({
        ...envelope,
        gatewayId: 'gw2',
        clientIp: '198.18.0.99',
        body: { tags: ['a'], title: 'keyed' },
      });
      assert.equal(other.replayed, true);
      assert.deepEqual(other.response, first.response);
      await assert.rejects(
        executor.execute({ ...envelope, body: { title: 'different' } }),
        failsWith('IDEMPOTENCY_KEY_REUSED', 422),
      );
      await assert.rejects(
        executor.execute({ ...envelope, ...notes.list(), ...keyed }),
        failsWith('IDEMPOTENCY_KEY_REUSED', 422),
      );
      // An unkeyed envelope with that id (a forgery: keyed ids are version 8) learns nothing.
      await assert.rejects(
        executor.execute({ ...envelope, idempotent: false }),
        failsWith('IDEMPOTENCY_CONFLICT', 409),
      );
      assert.equal(await count(db, 'notes'), 1);
      const { rows } = await db.query('SELECT idempotent, fingerprint FROM nonstop_requests');
      assert.equal(rows[0]?.idempotent, true);
      assert.match(String(rows[0]?.fingerprint), /^[0-9a-f]{64}$/);
    });

    test('concurrent keyed deliveries from two gateways have exactly one effect', async (t) => {
      const db = await openTestDatabase(t, kind);
      const executor = new Executor(db, notesApplication, silentLogger());
      const envelope = makeEnvelope({
        ...notes.create({ title: 'race' }),
        id: keyedId(`race-${kind}`),
        idempotent: true,
      });
      const results = await Promise.all(
        ['gw1', 'gw2', 'gw1', 'gw2'].map((gatewayId) => executor.execute({ ...envelope, gatewayId })),
      );
      assert.equal(results.filter((r) => !r.replayed).length, 1);
      for (const r of results) assert.deepEqual(r.response, results[0]!.response);
      assert.equal(await count(db, 'notes'), 1);
    });
  });
}

test('on PostgreSQL, a handler still running at the deadline is cancelled: 504, nothing recorded', async (t) => {
  const db = await openTestDatabase(t, 'postgres');
  const slow: Application = {
    ...notesApplication,
    handlers: {
      ...notesApplication.handlers,
      'notes.create': async (ctx) => {
        await ctx.tx.query(
          `INSERT INTO notes (id, title) VALUES ('0190a0b0-0000-7000-8000-000000000002', 'slow')`,
        );
        await ctx.tx.query('SELECT pg_sleep(30)');
        return { status: 201 };
      },
    },
  };
  const envelope = makeEnvelope({ ...notes.create({ title: 'slow' }), deadline: Date.now() + 300 });
  await assert.rejects(
    new Executor(db, slow, silentLogger()).execute(envelope),
    failsWith('DEADLINE_EXCEEDED', 504),
  );
  assert.equal(await count(db, 'notes'), 0);
  assert.equal(await count(db, 'nonstop_requests'), 0);
});
