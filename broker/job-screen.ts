// Screens each job a gateway's queue hands the broker's worker before BullMQ reads it. A
// gateway's Redis user can write any field of its own job hashes, and BullMQ acts on several:
// `rjk` plus a scheduler entry makes the worker add the next job each time it takes one (a job
// generator the broker keeps alive), `parentKey`/`parent` and `deid` make moveToFinished update
// a parent or re-add a "next" job, and the stored options decide retries and whether the job
// stays in Redis. Its values can also be of any size (a 50 MB name, 500 MB of data).
//
// BullMQ reads a job as the reply of its moveToActive (or moveToFinished/moveToDelayed, which
// fetch the next job) script: the whole hash. This module takes that reply as Buffers (nothing
// is decoded or parsed before its size is known), and hands BullMQ a rebuilt hash: name and data
// when within bounds, fixed options (one attempt, removed when finished), and none of the
// fields BullMQ would act on. Those it deletes from Redis before BullMQ's scripts can read them.
// A job with anything a real gateway never writes is refused: `refusal(id)` says why, and the
// worker drops it without executing it.
import { createRedisBackend, type BackendFactory, type RedisQueueBackend } from 'bullmq';
import type { Redis } from '../lib/redis.js';

/** Fields that a BullMQ script acts on when it finds them in a job hash. */
const ACTING_FIELDS = ['rjk', 'parentKey', 'parent', 'deid'] as const;

/** What addStandardJob writes and the worker's own scripts add, with their size bounds. */
const NUMERIC_FIELDS = ['timestamp', 'processedOn', 'ats', 'atm', 'attemptsMade', 'stc'] as const;
const MAX_NUMBER_BYTES = 20;
const MAX_NAME_BYTES = 128;
const MAX_ID_BYTES = 128;
const MAX_OPTS_BYTES = 1024;
const MAX_DEFA_BYTES = 256;
const MAX_FIELDS = 32;
const MAX_FIELD_NAME_BYTES = 32;

/** The options a real gateway gives its jobs (gateway/request-queue.ts), and their values. */
const GATEWAY_OPTS: Readonly<Record<string, (v: unknown, id: string) => boolean>> = {
  jobId: (v, id) => v === id,
  removeOnComplete: (v) => v === true,
  removeOnFail: (v) => v === true,
  // BullMQ's Queue stores 0 when no attempts are given; both mean one attempt.
  attempts: (v) => v === 1 || v === 0,
};

/** What BullMQ is told of every job's options, whatever the gateway stored. */
export const SCREENED_OPTS = JSON.stringify({ attempts: 1, removeOnComplete: true, removeOnFail: true });

export interface JobScreenLimits {
  /** Largest `data` (the envelope's JSON) accepted, in bytes. */
  readonly maxDataBytes: number;
}

export interface ScreenedJob {
  /** The hash BullMQ may read, as the flat field/value list its scripts return. */
  readonly fields: string[];
  /** Acting fields the gateway wrote: to be deleted before any BullMQ script reads them. */
  readonly strip: string[];
  /** The scheduler an `rjk` names (when short enough to be a key), to be removed with it. */
  readonly scheduler?: string;
  /** Why the job is refused; absent for a job as a real gateway writes it. */
  readonly refusal?: string;
}

type Value = Buffer | string;

const size = (v: Value) => (typeof v === 'string' ? Buffer.byteLength(v) : v.length);
const text = (v: Value) => (typeof v === 'string' ? v : v.toString('utf8'));

/**
 * Screens one job hash (`flat` as HGETALL returns it). Reads each value only after its size is
 * known to be within bounds; parses data and options only then.
 */
export function screenJob(id: string, flat: readonly Value[], limits: JobScreenLimits): ScreenedJob {
  const problems: string[] = [];
  const strip: string[] = [];
  let scheduler: string | undefined;
  const kept = new Map<string, string>();
  if (Buffer.byteLength(id) > MAX_ID_BYTES) problems.push(`a job id of ${Buffer.byteLength(id)} bytes`);
  if (flat.length / 2 > MAX_FIELDS) problems.push(`${flat.length / 2} fields`);
  for (let i = 0; i + 1 < flat.length && problems.length === 0; i += 2) {
    const nameBytes = size(flat[i]!);
    if (nameBytes > MAX_FIELD_NAME_BYTES) {
      problems.push(`a field name of ${nameBytes} bytes`);
      break;
    }
    const field = text(flat[i]!);
    const value = flat[i + 1]!;
    const bytes = size(value);
    if ((ACTING_FIELDS as readonly string[]).includes(field)) {
      strip.push(field);
      if (field === 'rjk' && bytes <= MAX_NAME_BYTES) scheduler = text(value);
      continue;
    }
    const max = boundOf(field, limits);
    if (max === undefined) {
      problems.push(`field "${field}", which no gateway writes`);
    } else if (bytes > max) {
      problems.push(`a ${field} of ${bytes} bytes (at most ${max})`);
    } else {
      kept.set(field, text(value));
    }
  }
  if (strip.length > 0) problems.unshift(`forged job fields: ${strip.join(', ')}`);
  if (problems.length === 0) problems.push(...checkKept(id, kept));

  const refusal = problems.length === 0 ? undefined : problems.join('; ');
  const fields = [
    'name',
    kept.get('name') ?? '',
    'data',
    refusal === undefined ? kept.get('data')! : 'null',
    'opts',
    SCREENED_OPTS,
    'delay',
    '0',
    'priority',
    '0',
  ];
  for (const f of [...NUMERIC_FIELDS, 'defa'] as const) {
    const v = kept.get(f);
    if (v !== undefined) fields.push(f, v);
  }
  return {
    fields,
    strip,
    ...(scheduler === undefined ? {} : { scheduler }),
    ...(refusal === undefined ? {} : { refusal }),
  };
}

function boundOf(field: string, limits: JobScreenLimits): number | undefined {
  if (field === 'name') return MAX_NAME_BYTES;
  if (field === 'data') return limits.maxDataBytes;
  if (field === 'opts') return MAX_OPTS_BYTES;
  if (field === 'delay' || field === 'priority') return MAX_NUMBER_BYTES;
  if (field === 'defa' || field === 'pb') return MAX_DEFA_BYTES;
  if ((NUMERIC_FIELDS as readonly string[]).includes(field)) return MAX_NUMBER_BYTES;
  return undefined;
}

/** The kept values (all within their size bounds) as a real gateway's job has them. */
function checkKept(id: string, kept: ReadonlyMap<string, string>): string[] {
  const problems: string[] = [];
  if (kept.get('name') === undefined) problems.push('no name');
  const data = kept.get('data');
  if (data === undefined) problems.push('no data');
  else if (!parses(data)) problems.push('data that is not JSON');
  for (const f of ['delay', 'priority'] as const) {
    const v = kept.get(f);
    if (v !== undefined && v !== '0') problems.push(`${f} ${v}`);
  }
  for (const f of NUMERIC_FIELDS) {
    const v = kept.get(f);
    if (v !== undefined && !/^\d+$/.test(v)) problems.push(`${f} that is not a number`);
  }
  const opts = kept.get('opts');
  let parsed: unknown;
  try {
    parsed = opts === undefined ? {} : JSON.parse(opts);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push('options that are not a JSON object');
  } else {
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
      const ok = Object.hasOwn(GATEWAY_OPTS, k) && GATEWAY_OPTS[k]!(v, id);
      if (!ok) problems.push(`option "${k}" ${JSON.stringify(v).slice(0, 64)}, which no gateway sets`);
    }
  }
  return problems;
}

function parses(json: string): boolean {
  try {
    JSON.parse(json);
    return true;
  } catch {
    return false;
  }
}

/** The most refusals remembered between screening a job and the worker taking it. */
const MAX_REFUSALS = 1024;

/**
 * Screens the jobs BullMQ's worker fetches for one queue: install with `backendFactory`.
 * Acting fields are deleted (and a named scheduler removed) before the job reaches BullMQ.
 */
export class JobScreen {
  private readonly refusals = new Map<string, string>();

  constructor(
    private readonly redis: Redis,
    /** `<prefix>:<queue>` of the queue's keys. */
    private readonly base: string,
    private readonly limits: JobScreenLimits,
  ) {}

  /** Why the job was refused, once (the entry is forgotten). */
  takeRefusal(id: string): string | undefined {
    const refusal = this.refusals.get(id);
    this.refusals.delete(id);
    return refusal;
  }

  /**
   * Rebuilds the job in a BullMQ "next job" reply (`[hash, id, rateLimitDelay, delayUntil]`,
   * values as Buffers); anything else passes unchanged.
   */
  async screenReply(reply: unknown): Promise<unknown> {
    if (!Array.isArray(reply) || !Array.isArray(reply[0]) || reply[0].length === 0) return reply;
    const hash = reply[0] as Value[];
    const id = text(reply[1] as Value);
    const screened = screenJob(id, hash, this.limits);
    const key = `${this.base}:${id}`;
    if (screened.strip.length > 0) await this.redis.hdel(key, ...screened.strip);
    if (screened.scheduler !== undefined) {
      await this.redis
        .multi()
        .zrem(`${this.base}:repeat`, screened.scheduler)
        .unlink(`${this.base}:repeat:${screened.scheduler}`)
        .exec();
    }
    if (screened.refusal !== undefined) {
      if (this.refusals.size >= MAX_REFUSALS) this.refusals.delete(this.refusals.keys().next().value!);
      this.refusals.set(id, screened.refusal);
    }
    return [screened.fields, id, ...(reply as unknown[]).slice(2)];
  }
}

/** The scripts whose reply carries the next job's whole hash. */
const FETCHING_SCRIPTS = new Set(['moveToActive', 'moveToFinished', 'moveToDelayed']);

interface ScriptClient {
  runCommand(name: string, args: unknown[]): Promise<unknown>;
}

/**
 * BullMQ's Redis backend with every job fetch screened by `screen`. The fetching scripts run in
 * their Buffer form (ioredis defines `<name>Buffer` beside each script), so that no value is
 * decoded before its size is checked.
 */
export function screenedBackend(screen: JobScreen): BackendFactory<RedisQueueBackend> {
  return (name, opts, flags) => {
    const backend = createRedisBackend(name, opts, flags);
    const exec = backend.execCommand.bind(backend);
    backend.execCommand = (client, command, args) => {
      if (!FETCHING_SCRIPTS.has(command)) return exec(client, command, args) as unknown;
      const raw = client as unknown as ScriptClient & Record<string, unknown>;
      const buffered: ScriptClient = {
        runCommand: (script, scriptArgs) => {
          const fn = raw[`${script}Buffer`];
          return typeof fn === 'function'
            ? (fn as (a: unknown[]) => Promise<unknown>)(scriptArgs)
            : raw.runCommand(script, scriptArgs);
        },
      };
      const reply = exec(buffered as unknown as typeof client, command, args) as unknown;
      return reply instanceof Promise ? reply.then((r) => screen.screenReply(r)) : reply;
    };
    return backend;
  };
}
