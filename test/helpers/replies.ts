// A gateway process's reply stream as the tests' stand-ins for a broker or a gateway use it: a
// reply added as a broker adds it, and read as a gateway reads it (lib/envelope.ts REPLY_FIELD).
import type { Redis } from 'ioredis';
import { REPLY_FIELD } from '../../lib/envelope.js';

/** Adds a reply (an object, or raw text) as a broker does. */
export async function addReply(redis: Redis, key: string, reply: unknown): Promise<void> {
  await redis.xadd(key, '*', REPLY_FIELD, typeof reply === 'string' ? reply : JSON.stringify(reply));
}

/** Every reply in the stream, oldest first, as text (nothing is removed). */
export async function replyTexts(redis: Redis, key: string): Promise<string[]> {
  const entries = await redis.xrange(key, '-', '+');
  return entries.map(([, fields]) => fields[fields.indexOf(REPLY_FIELD) + 1] ?? '');
}

/** The first reply that arrives within `seconds`, removed from the stream; null if none did. */
export async function takeReply(redis: Redis, key: string, seconds: number): Promise<string | null> {
  const read = await redis.xread('COUNT', 1, 'BLOCK', seconds * 1000, 'STREAMS', key, '0-0');
  const entry = read?.[0]?.[1][0];
  if (entry === undefined) return null;
  await redis.xdel(key, entry[0]);
  return entry[1][entry[1].indexOf(REPLY_FIELD) + 1] ?? null;
}
