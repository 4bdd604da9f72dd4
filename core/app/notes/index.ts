// The sample application: a small notes API, so that the whole path does something real.
import type { Application } from '../../application.js';
import { createNote } from './create.js';
import { deleteNote } from './delete.js';
import { getNote } from './get.js';
import { listNotes } from './list.js';
import { notesMigrations } from './migrations.js';

export const notesApplication: Application = {
  name: 'notes',
  migrations: notesMigrations,
  handlers: {
    'notes.create': createNote,
    'notes.get': getNote,
    'notes.list': listNotes,
    'notes.delete': deleteNote,
  },
};
