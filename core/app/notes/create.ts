// notes.create: POST /notes → 201 with the new note.
import { errorResponse, type HandlerContext, type AppResponse } from '../../application.js';
import { checkNewNote } from './input.js';
import { NOTE_COLUMNS, noteId, toNote } from './note.js';

export async function createNote(ctx: HandlerContext): Promise<AppResponse> {
  const input = checkNewNote(ctx.body);
  if (!input.ok) return errorResponse(400, 'NOTES_INVALID', input.problem);
  const note = input.value;
  const result = await ctx.tx.query(
    `INSERT INTO notes (id, title, text, priority, tags, due, contact)
     VALUES ($1, $2, $3, $4, ARRAY(SELECT json_array_elements_text($5::json)), $6::date, $7)
     RETURNING ${NOTE_COLUMNS}`,
    [noteId(), note.title, note.text, note.priority, JSON.stringify(note.tags), note.due, note.contact],
  );
  const created = toNote(result.rows[0] ?? {});
  return { status: 201, headers: { location: `/notes/${created.id}` }, body: created };
}
