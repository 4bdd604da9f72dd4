import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkNewNote } from '../../core/app/notes/input.js';
import { isUuid, noteId } from '../../core/app/notes/note.js';

test('a new note gets the defaults the route schema would apply', () => {
  assert.deepEqual(checkNewNote({ title: 'Buy milk' }), {
    ok: true,
    value: { title: 'Buy milk', text: '', priority: 'normal', tags: [], due: null, contact: null },
  });
});

test('odd bodies are refused with a reason, not a crash', () => {
  const odd: unknown[] = [
    null,
    'title',
    [],
    {},
    { title: '' },
    { title: 7 },
    { title: 'x', priority: 'urgent' },
    { title: 'x', tags: 'a' },
    { title: 'x', tags: ['A'] },
    { title: 'x', tags: ['a', 'a'] },
    { title: 'x', due: '2024-02-30' },
    { title: 'x', due: 20240101 },
    { title: 'x', contact: 'nobody' },
  ];
  for (const body of odd) {
    const checked = checkNewNote(body);
    assert.equal(checked.ok, false, JSON.stringify(body));
  }
});

test('note ids are UUIDv7 and sort by creation time', () => {
  const early = noteId(1_700_000_000_000);
  const late = noteId(1_700_000_000_001);
  assert.ok(isUuid(early) && isUuid(late));
  assert.equal(early[14], '7');
  assert.ok(early < late);
});
