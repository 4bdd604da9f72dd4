// A PostgreSQL standby promoted under load (issue #16): the world's core on a primary with a
// synchronous streaming standby, reached through a link that the failover moves (as DNS or an
// address moves). The primary is SIGKILLed mid-load and the standby promoted: the core stays up
// and reconnects, the brokers retry what it answered 503, and every keyed request is answered
// 201 with its note written once on the new primary.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ThreeTier } from '../../world/three-tier.js';
import { descendants, worldSkipReason } from '../../world/world.js';
import { countNotes } from '../world/notes.js';

const skip = worldSkipReason();
const LOAD = 60;

describe('PostgreSQL standby promotion', { skip }, () => {
  let tt: ThreeTier;
  before(async () => {
    tt = await ThreeTier.start({ corePostgres: true, corePostgresStandby: true });
    await tt.waitUntilServing(90_000);
  });
  after(() => tt?.close());

  test(
    'the primary killed mid-load, the standby promoted: nothing lost, nothing twice',
    { timeout: 300_000 },
    async (t) => {
      const pg = tt.core.postgres!;
      assert.equal(
        await pg.primary.adminQuery('SELECT application_name, sync_state FROM pg_stat_replication'),
        'standby|sync',
        'the standby streams, synchronously',
      );

      const creates = (prefix: string, gatewayId: string) =>
        tt.requests(
          gatewayId,
          Array.from({ length: LOAD / 2 }, (_, i) => ({
            method: 'POST',
            path: '/notes',
            body: JSON.stringify({ title: `${prefix}-${i}` }),
            headers: { 'idempotency-key': `${prefix}-${i}` },
            timeoutMs: 30_000,
          })),
        );
      const core = tt.core.process;
      const executed = () => core.lines.filter((l) => l.includes('"route":"notes.create"')).length;
      const load = Promise.all([creates('promote-a', 'gw1'), creates('promote-b', 'gw2')]);
      for (let i = 0; i < 100 && executed() < 10; i++) await new Promise((r) => setTimeout(r, 50));
      const old = pg.primary;
      const promoted = await pg.promoteStandby();
      assert.equal(pg.primary, promoted, 'the promoted standby is the primary now');
      assert.equal(pg.standby, null);
      assert.ok(!old.process.running, 'the old primary is killed');
      t.diagnostic(
        `primary ${old.process.pid} killed after ${executed()} executions; standby ${promoted.process.pid} promoted`,
      );
      const answers = (await load).flat();
      assert.deepEqual(
        answers.filter((a) => a.status !== 201).map((a) => `${a.status} ${a.error ?? a.body}`),
        [],
      );
      assert.ok(core.running, 'the core outlived its primary');
      // Through the link the core dials: the promoted server (its backend), out of recovery.
      const client = await pg.connect();
      try {
        const { rows } = await client.query<{ standby: boolean; pid: number }>(
          'SELECT pg_is_in_recovery() AS standby, pg_backend_pid() AS pid',
        );
        assert.equal(rows[0]!.standby, false, 'the link leads to a primary');
        assert.ok(descendants(promoted.process.pid).includes(rows[0]!.pid), 'the promoted server answers');
      } finally {
        await client.end();
      }
      const notes = await countNotes(pg, 'promote-%');
      assert.equal(notes.size, LOAD, 'every request has its note on the new primary');
      for (const [title, n] of notes) assert.equal(n, 1, `${title} written once`);
    },
  );
});
