// notes.delete: DELETE /notes/:id → 204, or 404.
import type { AppResponse, HandlerContext } from '../../application.js';
import { notFound } from './get.js';
import { isUuid } from './note.js';

export async function deleteNote(ctx: HandlerContext): Promise<AppResponse> {
  const id = ctx.params.id;
  if (!isUuid(id)) return notFound(id);
  const result = await ctx.tx.query('DELETE FROM notes WHERE id = $1 RETURNING id', [id]);
  return result.rowCount > 0 ? { status: 204 } : notFound(id);
}
