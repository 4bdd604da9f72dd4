// notes.get: GET /notes/:id → 200 with the note, or 404.
import { errorResponse, type AppResponse, type HandlerContext } from '../../application.js';
import { isUuid, NOTE_COLUMNS, toNote } from './note.js';

export async function getNote(ctx: HandlerContext): Promise<AppResponse> {
  const id = ctx.params.id;
  const row = isUuid(id)
    ? (await ctx.tx.query(`SELECT ${NOTE_COLUMNS} FROM notes WHERE id = $1`, [id])).rows[0]
    : undefined;
  if (row === undefined) return notFound(id);
  return { status: 200, body: toNote(row) };
}

export function notFound(id: string | undefined): AppResponse {
  return errorResponse(404, 'NOTES_NOT_FOUND', `no note with id ${JSON.stringify(id ?? '')}`);
}
