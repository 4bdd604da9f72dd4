// A note as the API shows it, and the one way rows become notes. Rows are `unknown` until
// `toNote` has checked them.
import { randomBytes } from 'node:crypto';
import type { Row } from '../../db/database.js';

export type Priority = 'low' | 'normal' | 'high';
export const PRIORITIES: readonly Priority[] = ['low', 'normal', 'high'];

/** What a client supplies to create a note (after defaults). */
export interface NewNote {
  readonly title: string;
  readonly text: string;
  readonly priority: Priority;
  readonly tags: readonly string[];
  readonly due: string | null;
  readonly contact: string | null;
}

export interface Note extends NewNote {
  readonly id: string;
  readonly createdAt: string;
}

/** Columns in the shape `toNote` expects, formatted in SQL so both drivers return strings. */
export const NOTE_COLUMNS = `id::text AS id, title, text, priority, to_json(tags) AS tags, due::text AS due,
  contact, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at`;

export function toNote(row: Row): Note {
  const { id, title, text, priority, tags, due, contact, created_at: createdAt } = row;
  if (
    typeof id !== 'string' ||
    typeof title !== 'string' ||
    typeof text !== 'string' ||
    !PRIORITIES.includes(priority as Priority) ||
    !Array.isArray(tags) ||
    !tags.every((t) => typeof t === 'string') ||
    (due !== null && typeof due !== 'string') ||
    (contact !== null && typeof contact !== 'string') ||
    typeof createdAt !== 'string'
  ) {
    throw new Error('notes: a row does not have the shape of a note');
  }
  return { id, title, text, priority: priority as Priority, tags, due, contact, createdAt };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

/**
 * A UUIDv7: 48 bits of milliseconds, then random bits. Ids sort by creation time, so keyset
 * paging by id lists notes oldest first and still works when the last note seen was deleted.
 */
export function noteId(now = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
