// notes.list: GET /notes?limit&after&tag → { items, next }, oldest first. Keyset paging: `after`
// is the last id seen and `next` the id to pass as `after` for the next page (null at the end).
import { errorResponse, type AppResponse, type HandlerContext } from '../../application.js';
import { isUuid, NOTE_COLUMNS, toNote } from './note.js';

const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 100;
const TAG = /^[a-z0-9-]{1,32}$/;

export async function listNotes(ctx: HandlerContext): Promise<AppResponse> {
  const { limit: rawLimit, after, tag } = ctx.query;
  const limit = rawLimit === undefined ? DEFAULT_LIMIT : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    return errorResponse(400, 'NOTES_INVALID', `"limit" must be an integer from 1 to ${MAX_LIMIT}`);
  }
  if (after !== undefined && !isUuid(after)) {
    return errorResponse(400, 'NOTES_INVALID', '"after" must be a note id');
  }
  if (tag !== undefined && !(typeof tag === 'string' && TAG.test(tag))) {
    return errorResponse(400, 'NOTES_INVALID', '"tag" must be a tag of a-z, 0-9 and -');
  }
  // One row more than asked tells whether another page exists.
  const result = await ctx.tx.query(
    `SELECT ${NOTE_COLUMNS} FROM notes
     WHERE ($1::uuid IS NULL OR id > $1::uuid) AND ($2::text IS NULL OR $2::text = ANY (tags))
     ORDER BY id LIMIT $3`,
    [after ?? null, tag ?? null, limit + 1],
  );
  const items = result.rows.slice(0, limit).map(toNote);
  const next = result.rows.length > limit ? (items[items.length - 1]?.id ?? null) : null;
  return { status: 200, body: { items, next } };
}
