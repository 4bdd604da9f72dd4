import type { Migration } from '../../application.js';

export const notesMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'notes',
    sql: [
      `CREATE TABLE notes (
        id uuid PRIMARY KEY,
        title text NOT NULL,
        text text NOT NULL DEFAULT '',
        priority text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high')),
        tags text[] NOT NULL DEFAULT '{}',
        due date,
        contact text,
        created_at timestamptz NOT NULL DEFAULT now()
      )`,
      'CREATE INDEX notes_tags ON notes USING gin (tags)',
    ],
  },
];
