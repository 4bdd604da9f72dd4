// The body of notes.create, checked again here. The broker has validated it against the route
// schema already; this keeps odd input (another broker version, a hand-made request) from
// crashing a handler or reaching the database as something else.
import { PRIORITIES, type NewNote, type Priority } from './note.js';

export type { NewNote };

export type Checked<T> = { ok: true; value: T } | { ok: false; problem: string };

const TAG = /^[a-z0-9-]{1,32}$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

export function checkNewNote(body: unknown): Checked<NewNote> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, problem: 'the body must be a JSON object' };
  }
  const b = body as Record<string, unknown>;
  const { title, text = '', priority = 'normal', tags = [], due = null, contact = null } = b;
  if (typeof title !== 'string' || title.length < 1 || title.length > 200) {
    return { ok: false, problem: '"title" must be a string of 1 to 200 characters' };
  }
  if (typeof text !== 'string' || text.length > 20000) {
    return { ok: false, problem: '"text" must be a string of at most 20000 characters' };
  }
  if (!PRIORITIES.includes(priority as Priority)) {
    return { ok: false, problem: `"priority" must be one of ${PRIORITIES.join(', ')}` };
  }
  if (
    !Array.isArray(tags) ||
    tags.length > 8 ||
    !tags.every((t) => typeof t === 'string' && TAG.test(t)) ||
    new Set(tags).size !== tags.length
  ) {
    return { ok: false, problem: '"tags" must be at most 8 distinct tags of a-z, 0-9 and -' };
  }
  if (due !== null && !(typeof due === 'string' && isCalendarDate(due))) {
    return { ok: false, problem: '"due" must be a date as YYYY-MM-DD' };
  }
  if (contact !== null && !(typeof contact === 'string' && contact.length <= 254 && contact.includes('@'))) {
    return { ok: false, problem: '"contact" must be an email address' };
  }
  return {
    ok: true,
    value: { title, text, priority: priority as Priority, tags: tags as string[], due, contact },
  };
}

function isCalendarDate(value: string): boolean {
  if (!DATE.test(value)) return false;
  const date = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === value;
}
