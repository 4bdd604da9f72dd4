// A PostgreSQL standby promoted under load (issue #16): the world's core on a primary with a
// synchronous streaming standby, reached through a link that the failover moves (as DNS or an
// address moves). The primary is SIGKILLed mid-load and the standby promoted: the core stays up
// and reconnects, the brokers retry what it answered 503, and every keyed request is answered
// 201 with its note written once on the new primary.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ThreeTier } from '../../world/three-tier.js';
import { worldSkipReason } from '../../world/world.js';

const skip = worldSkipReason();
const LOAD = 60;

describe('PostgreSQL standby promotion', { skip }, () => {
  let tt: ThreeTier;
  before(async () => {
    tt = await ThreeTier.start({ corePostgres: true, corePostgresStandby: true });
    await tt.waitUntilServing(90_000);
  });
  after(() => tt?.close());

  const query = async <R extends object>(text: string, params: unknown[] = []): Promise<R[]> => {
    const client = await tt.core.postgres!.connect();
    try {
      return (await client.query<R>(text, params)).rows;
    } finally {
      await client.end();
    }
  };

  test(
    'the primary killed mid-load, the standby promoted: nothing lost, nothing twice',
    { timeout: 300_000 },
    async (t) => {
      const pg = tt.core.postgres!;
      assert.equal(
        await pg.adminQuery('SELECT application_name, sync_state FROM pg_stat_replication'),
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
      const oldPrimary = pg.process.pid;
      await pg.promoteStandby();
      t.diagnostic(
        `primary ${oldPrimary} killed after ${executed()} executions; standby ${pg.process.pid} promoted`,
      );
      const answers = (await load).flat();
      assert.deepEqual(
        answers.filter((a) => a.status !== 201).map((a) => `${a.status} ${a.error ?? a.body}`),
        [],
      );
      assert.ok(core.running, 'the core outlived its primary');
      const [recovery] = await query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
      assert.equal(recovery!.standby, false, 'the link leads to the promoted server');
      const rows = await query<{ title: string; n: number }>(
        "SELECT title, count(*)::int AS n FROM notes WHERE title LIKE 'promote-%' GROUP BY title",
      );
      assert.equal(rows.length, LOAD, 'every request has its note on the new primary');
      for (const r of rows) assert.equal(r.n, 1, `${r.title} written once`);
    },
  );
});
