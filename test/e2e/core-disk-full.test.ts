// The core's disk full (issue #16): the world's core on a real PostgreSQL whose data folder is a
// tmpfs of its own, filled to the last byte while clients create notes through a gateway. The
// core answers 503 (the brokers retry until the deadline, the client gets 503 or 504), nothing is
// half-written (no note for a request that was refused), the core stays up, and once space
// returns the same requests (same Idempotency-Key) are done exactly once.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ThreeTier } from '../../world/three-tier.js';
import { worldSkipReason } from '../../world/world.js';
import { countNotes } from '../world/notes.js';

const skip = worldSkipReason();
const DISK_MB = 64;
/** A note's text: random, so that it does not compress, and large enough to need new pages. */
const TEXT_CHARS = 16_000;
const NOTES = 5;

describe("the core's disk full", { skip }, () => {
  let tt: ThreeTier;
  before(async () => {
    tt = await ThreeTier.start({ corePostgres: true, corePostgresDiskMb: DISK_MB, replyTimeoutMs: 4000 });
    await tt.waitUntilServing(90_000);
  });
  after(() => tt?.close());

  const create = (title: string, text: string) =>
    tt.request('gw1', {
      method: 'POST',
      path: '/notes',
      body: JSON.stringify({ title, text }),
      headers: { 'idempotency-key': `disk-full-${title}` },
      timeoutMs: 15_000,
    });

  test(
    'answered 503 or 504 while full, nothing half-written, done once when space returns',
    { timeout: 300_000 },
    async (t) => {
      const pg = tt.core.postgres!;
      const core = tt.core.process;
      const before = await create('disk-before', 'x');
      assert.equal(before.status, 201, before.error ?? before.body);

      // Fill the tmpfs: big blocks, then small ones for the last bytes (dd stops at ENOSPC).
      const filler = join(pg.primary.dataDir, 'filler');
      for (const bs of ['1M', '4k']) {
        try {
          execFileSync('dd', ['if=/dev/zero', `of=${filler}-${bs}`, `bs=${bs}`], { stdio: 'ignore' });
        } catch {
          // ENOSPC: what dd is for here
        }
      }
      const free = statfsSync(pg.primary.dataDir);
      assert.ok(free.bavail * free.bsize < 64 * 1024, `${free.bavail * free.bsize} bytes still free`);

      const texts = Array.from({ length: NOTES }, () =>
        randomBytes(TEXT_CHARS).toString('base64').slice(0, TEXT_CHARS),
      );
      const from = core.lines.length;
      const whileFull = [];
      for (let i = 0; i < NOTES; i++) whileFull.push(await create(`disk-full-${i}`, texts[i]!));
      const statuses = whileFull.map((a) => a.status);
      t.diagnostic(`while full: ${JSON.stringify(statuses)}`);
      assert.ok(core.running, 'the core outlived its full disk');
      assert.ok(
        statuses.every((s) => s === 201 || s === 503 || s === 504),
        `only 201, 503 or 504: ${JSON.stringify(statuses)}`,
      );
      assert.ok(statuses.filter((s) => s !== 201).length >= NOTES - 1, 'a full disk refuses new notes');
      const refused = core.lines
        .slice(from)
        .filter((l) => l.includes('"status":503') && l.includes('NONSTOP_ERR_DATABASE_UNAVAILABLE'));
      assert.ok(refused.length > 0, 'the core answered the brokers 503: the database is unavailable');
      // Nothing half-written: a refused request left no note.
      const stored = await countNotes(pg, 'disk-full-%');
      for (let i = 0; i < NOTES; i++) {
        if (statuses[i] !== 201) assert.equal(stored.get(`disk-full-${i}`), undefined, `disk-full-${i}`);
      }

      // Space returns: the same requests are done, each exactly once.
      rmSync(`${filler}-1M`, { force: true });
      rmSync(`${filler}-4k`, { force: true });
      for (let i = 0; i < NOTES; i++) {
        const again = await create(`disk-full-${i}`, texts[i]!);
        assert.equal(again.status, 201, again.error ?? again.body);
      }
      const done = await countNotes(pg, 'disk-full-%');
      for (let i = 0; i < NOTES; i++) assert.equal(done.get(`disk-full-${i}`), 1, `disk-full-${i} once`);
      assert.ok(core.running);
    },
  );
});
