// The sample notes API through the executor, on PostgreSQL (own schema) and on PGlite.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { notesApplication } from '../../core/app/notes/index.js';
import { Executor } from '../../core/executor.js';
import { silentLogger } from '../../lib/log.js';
import { DATABASE_KINDS, openTestDatabase } from '../helpers/core.js';
import { call, notes } from '../helpers/execute.js';

interface NoteBody {
  id: string;
  title: string;
  text: string;
  priority: string;
  tags: string[];
  due: string | null;
  contact: string | null;
  createdAt: string;
}
interface Page {
  items: NoteBody[];
  next: string | null;
}

for (const kind of DATABASE_KINDS) {
  describe(`notes on ${kind}`, () => {
    test('create answers 201 with the whole note, and get finds it', async (t) => {
      const executor = new Executor(await openTestDatabase(t, kind), notesApplication, silentLogger());
      const created = await call(
        executor,
        notes.create({
          title: 'Call Ann',
          priority: 'high',
          tags: ['work', 'phone'],
          due: '2025-03-01',
          contact: 'ann@example.org',
        }),
      );
      assert.equal(created.response.status, 201);
      const note = created.response.body as NoteBody;
      assert.match(note.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.deepEqual(
        { ...note, id: undefined, createdAt: undefined },
        {
          id: undefined,
          title: 'Call Ann',
          text: '',
          priority: 'high',
          tags: ['work', 'phone'],
          due: '2025-03-01',
          contact: 'ann@example.org',
          createdAt: undefined,
        },
      );
      assert.ok(Math.abs(Date.parse(note.createdAt) - Date.now()) < 5 * 60_000, note.createdAt);
      assert.equal(created.response.headers.location, `/notes/${note.id}`);

      const got = await call(executor, notes.get(note.id));
      assert.equal(got.response.status, 200);
      assert.deepEqual(got.response.body, note);
    });

    test('get and delete answer 404 with a JSON error for a note that does not exist', async (t) => {
      const executor = new Executor(await openTestDatabase(t, kind), notesApplication, silentLogger());
      for (const id of ['0190a0b0-0000-7000-8000-000000000000', 'not-a-uuid']) {
        for (const request of [notes.get(id), notes.delete(id)]) {
          const { response } = await call(executor, request);
          assert.equal(response.status, 404);
          assert.equal((response.body as { error: { code: string } }).error.code, 'NOTES_NOT_FOUND');
        }
      }
    });

    test('delete answers 204 once, then the note is gone', async (t) => {
      const executor = new Executor(await openTestDatabase(t, kind), notesApplication, silentLogger());
      const { id } = (await call(executor, notes.create({ title: 'temp' }))).response.body as NoteBody;
      const deleted = await call(executor, notes.delete(id));
      assert.deepEqual(deleted.response, { status: 204, headers: {}, body: null });
      assert.equal((await call(executor, notes.get(id))).response.status, 404);
      assert.equal((await call(executor, notes.delete(id))).response.status, 404);
    });

    test('list pages by keyset, oldest first, with a tag filter', async (t) => {
      const executor = new Executor(await openTestDatabase(t, kind), notesApplication, silentLogger());
      const ids: string[] = [];
      for (let i = 0; i < 5; i += 1) {
        const body = { title: `note ${i}`, tags: i % 2 === 0 ? ['even'] : ['odd'] };
        ids.push(((await call(executor, notes.create(body))).response.body as NoteBody).id);
        await new Promise((resolve) => setTimeout(resolve, 2)); // distinct milliseconds in the ids
      }
      const seen: string[] = [];
      const pageSizes: number[] = [];
      let after: string | null = null;
      do {
        const query: Record<string, string> = after === null ? { limit: '2' } : { limit: '2', after };
        const { response } = await call(executor, notes.list(query));
        assert.equal(response.status, 200);
        const page = response.body as Page;
        pageSizes.push(page.items.length);
        seen.push(...page.items.map((n) => n.id));
        after = page.next;
      } while (after !== null);
      assert.deepEqual(pageSizes, [2, 2, 1]);
      assert.deepEqual(seen, ids);

      const even = (await call(executor, notes.list({ tag: 'even' }))).response.body as Page;
      assert.deepEqual(
        even.items.map((n) => n.title),
        ['note 0', 'note 2', 'note 4'],
      );
      assert.equal(even.next, null);

      // Paging on from a note that was deleted meanwhile still works: ids are ordered by time.
      await call(executor, notes.delete(ids[1]!));
      const rest = (await call(executor, notes.list({ after: ids[1]! }))).response.body as Page;
      assert.deepEqual(
        rest.items.map((n) => n.id),
        ids.slice(2),
      );
    });

    test('odd input is answered 400, not a crash', async (t) => {
      const executor = new Executor(await openTestDatabase(t, kind), notesApplication, silentLogger());
      for (const request of [
        notes.create(null),
        notes.create({ title: 'x', tags: [1] }),
        notes.list({ limit: 'many' }),
        notes.list({ limit: '0' }),
        notes.list({ after: 'yesterday' }),
      ]) {
        const { response } = await call(executor, request);
        assert.equal(response.status, 400, JSON.stringify(request));
      }
      const list = (await call(executor, notes.list())).response.body as Page;
      assert.deepEqual(list, { items: [], next: null });
    });
  });
}
