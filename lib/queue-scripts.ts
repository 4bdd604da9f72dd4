// BullMQ's Lua scripts without EVAL on the gateway side. ioredis sends a script's whole source
// (EVAL) the first time a connection uses it; a gateway allowed EVAL could run any Lua in its
// broker's Redis — a busy loop stalls every gateway queued there. So brokers load BullMQ's
// scripts into their Redis (SCRIPT LOAD, again after every reconnect) and gateways call them by
// hash (EVALSHA) only. A gateway falls back to EVAL only on NOSCRIPT, which the production ACL
// refuses: the request gets 503 and the client may retry once the broker has loaded them.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Redis } from './redis.js';

interface Script {
  readonly name: string;
  readonly content: string;
  readonly keys: number;
}

function isScript(value: unknown): value is Script {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.name === 'string' && typeof v.content === 'string' && typeof v.keys === 'number';
}

/** Every Lua script of the installed BullMQ (from its CommonJS build, which Node loads for it). */
export const QUEUE_SCRIPTS: readonly Script[] = Object.values(
  createRequire(import.meta.url)('bullmq/dist/cjs/scripts/index.js') as Record<string, unknown>,
).filter(isScript);

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');

/** Loads every BullMQ script into this Redis; resolves with how many. */
export async function loadQueueScripts(redis: Redis): Promise<number> {
  const pipeline = redis.pipeline();
  for (const s of QUEUE_SCRIPTS) pipeline.script('LOAD', s.content);
  const results = (await pipeline.exec()) ?? [];
  const failed = results.find(([err]) => err !== null);
  if (failed) throw failed[0]!;
  return results.length;
}

/**
 * Makes the custom commands BullMQ defines on `redis` (before it defines them) call their
 * script by hash, with EVAL only when Redis answers NOSCRIPT.
 */
export function callScriptsByHash(redis: Redis): void {
  const target = redis as unknown as Record<string, unknown>;
  target.defineCommand = (name: string, definition: { numberOfKeys?: number; lua: string }) => {
    const sha = sha1(definition.lua);
    const keys = definition.numberOfKeys ?? 0;
    target[name] = async (...args: unknown[]) => {
      const flat = args.flat() as (string | Buffer | number)[];
      try {
        return await redis.evalsha(sha, keys, ...flat);
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        return redis.eval(definition.lua, keys, ...flat);
      }
    };
  };
}
