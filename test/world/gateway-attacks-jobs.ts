// The compromised gateway's attacks through its own queue (test/world/gateway-attacker.ts):
// forged job options, through BullMQ's scripts by hash (as the real gateway calls them) and
// through raw commands on its queue's keys; and values too large for anyone to read whole.
import { randomUUID } from 'node:crypto';
import { Queue, type JobsOptions } from 'bullmq';
import { queueName } from '../../lib/envelope.js';
import { callScriptsByHash } from '../../lib/queue-scripts.js';
import { kind, sleep, type Target } from './attack-target.js';

function queueOf(t: Target, once = false): Queue {
  const connection = t.connect({ once });
  callScriptsByHash(connection);
  const queue = new Queue(queueName(t.gateway), {
    connection,
    prefix: t.prefix,
    skipVersionCheck: true,
    skipWaitingForReady: true,
  });
  queue.on('error', () => {});
  return queue;
}

/** Something that looks like an envelope, enough for a worker to take and refuse. */
const forgedData = () => ({ v: 1, id: randomUUID(), route: 'notes.list', forged: true });

/** (e) Forged options as fast as it can push them: repeat, scheduler, delay, priority, parent, dedup. */
export async function forged(t: Target, ready: () => void): Promise<void> {
  const queue = queueOf(t);
  const r = t.connect();
  const variants: [string, () => Promise<unknown>][] = [
    ['repeat every 1 ms', () => queue.add('forged', forgedData(), { repeat: { every: 1 } } as JobsOptions)],
    [
      'job scheduler every 1 ms',
      () =>
        queue.upsertJobScheduler(`s-${randomUUID()}`, { every: 1 }, { name: 'forged', data: forgedData() }),
    ],
    ['delay 1 ms', () => queue.add('forged', forgedData(), { delay: 1 })],
    ['delay a year', () => queue.add('forged', forgedData(), { delay: 365 * 86_400_000 })],
    [
      'priority',
      () => queue.add('forged', forgedData(), { priority: 1 + Math.floor(Math.random() * 2_000_000) }),
    ],
    [
      "parent in the other gateway's queue",
      () => queue.add('forged', forgedData(), { parent: { id: 'victim', queue: t.otherBase } }),
    ],
    [
      'parent in its own queue',
      () => queue.add('forged', forgedData(), { parent: { id: 'p', queue: t.base } }),
    ],
    [
      'deduplication',
      () => queue.add('forged', forgedData(), { deduplication: { id: `d-${randomUUID()}`, ttl: 1e12 } }),
    ],
    ['attempts 1e6, no backoff', () => queue.add('forged', forgedData(), { attempts: 1_000_000 })],
    [
      'raw: a job hash with a repeat key and a scheduler entry',
      async () => {
        const scheduler = `raw-${randomUUID()}`;
        const id = `repeat:${scheduler}:${Date.now()}`;
        await r.zadd(`${t.base}:repeat`, Date.now(), scheduler);
        await r.hset(`${t.base}:repeat:${scheduler}`, { name: 'forged', every: '1', ic: '1' });
        await r.hset(`${t.base}:${id}`, {
          name: 'forged',
          data: JSON.stringify(forgedData()),
          opts: JSON.stringify({ repeat: { every: 1 }, delay: 0 }),
          rjk: scheduler,
          timestamp: String(Date.now()),
        });
        await r.lpush(`${t.base}:wait`, id);
        await r.zadd(`${t.base}:marker`, 0, '0');
      },
    ],
    [
      'raw: delayed and prioritized sets',
      async () => {
        const id = randomUUID();
        await r.hset(`${t.base}:${id}`, {
          name: 'forged',
          data: JSON.stringify(forgedData()),
          opts: JSON.stringify({ delay: 1, priority: 7 }),
          timestamp: String(Date.now()),
          delay: '1',
          priority: '7',
        });
        await r.zadd(`${t.base}:delayed`, 0, id);
        await r.zadd(`${t.base}:prioritized`, 7, id);
        await r.zadd(`${t.base}:marker`, 0, '0');
      },
    ],
    ['raw: events stream', () => r.xadd(`${t.base}:events`, '*', 'event', 'added', 'jobId', randomUUID())],
  ];
  let seq = 0;
  setTimeout(ready, 2000);
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (!t.stopping()) {
        const [what, run] = variants[seq++ % variants.length]!;
        try {
          await run();
          t.count(`${what}: added`);
        } catch (err) {
          t.count(`${what}: ${kind(err)}`);
          await sleep(20);
        }
      }
    }),
  );
  // Its own scheduler entries go too (the keys it knows of; the broker's sweep does the rest).
  await queue.close().catch(() => {});
}

/** (f) A job of hundreds of MB and a job name of 50 MB, offered again every few seconds. */
export async function oversized(t: Target, ready: () => void): Promise<void> {
  const r = t.connect({ once: true });
  const queue = queueOf(t, true);
  const accepted: string[] = [];
  const offer = async (): Promise<void> => {
    for (const mib of [400, 200, 100, 50]) {
      const id = randomUUID();
      const key = `${t.base}:${id}`;
      try {
        await r.hset(key, {
          name: 'oversized',
          data: Buffer.alloc(mib << 20, 'z'),
          opts: '{}',
          timestamp: String(Date.now()),
        });
        t.keys.add(key);
        await r.lpush(`${t.base}:wait`, id);
        await r.zadd(`${t.base}:marker`, 0, '0');
        t.count(`data ${mib} MiB: queued`);
        accepted.push(`data ${mib} MiB`);
        break;
      } catch (err) {
        t.count(`data ${mib} MiB: ${kind(err)}`);
      }
    }
    try {
      await queue.add('n'.repeat(50 << 20), forgedData(), { jobId: randomUUID() });
      t.count('name 50 MiB: queued');
      accepted.push('name 50 MiB');
    } catch (err) {
      t.count(`name 50 MiB: ${kind(err)}`);
    }
  };
  // Under way once the first offer is answered (or has had 20 s): from then on, one every 3 s.
  const first = offer();
  await Promise.race([first, sleep(20_000)]);
  ready();
  await first;
  while (!t.stopping()) {
    await Promise.race([sleep(3000), t.stopped]);
    if (!t.stopping()) await offer();
  }
  t.note('accepted', [...new Set(accepted)]);
  await queue.close().catch(() => {});
}
