// A second core host (issue #16): the world's two cores on one PostgreSQL, listed in every
// broker's core.peers. Both answer a share of the requests; one SIGKILLed mid-load loses
// nothing and doubles nothing (every keyed request answered 201, each note once), the other
// serves on, and the killed one, restarted, takes its share again.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ThreeTier, type ClientAnswer } from '../../world/three-tier.js';
import { worldSkipReason } from '../../world/world.js';
import { countNotes } from '../world/notes.js';

const skip = worldSkipReason();
const LOAD = 80;

describe('two core hosts', { skip }, () => {
  let tt: ThreeTier;
  before(async () => {
    tt = await ThreeTier.start({ corePostgres: true, secondCore: true });
    await tt.waitUntilServing(90_000);
  });
  after(() => tt?.close());

  /** Execute lines a core logged answering notes.create, so far. */
  const executed = (i: number) =>
    tt.cores[i]!.process.lines.filter((l) => l.includes('"route":"notes.create"')).length;
  const creates = (prefix: string, n: number, gatewayId: string) =>
    tt.requests(
      gatewayId,
      Array.from({ length: n }, (_, i) => ({
        method: 'POST',
        path: '/notes',
        body: JSON.stringify({ title: `${prefix}-${i}` }),
        headers: { 'idempotency-key': `${prefix}-${i}` },
        timeoutMs: 20_000,
      })),
    );
  const allCreated = (answers: ClientAnswer[]) =>
    assert.deepEqual(
      answers.filter((a) => a.status !== 201).map((a) => `${a.status} ${a.error ?? a.body}`),
      [],
    );

  test('both cores answer a share', { timeout: 120_000 }, async () => {
    const before = [executed(0), executed(1)];
    allCreated(await creates('spread', 20, 'gw1'));
    const shares = [executed(0) - before[0]!, executed(1) - before[1]!];
    assert.ok(shares[0]! > 0 && shares[1]! > 0, `shares ${JSON.stringify(shares)}`);
  });

  test(
    'one core SIGKILLed mid-load: every request answered, each note once',
    { timeout: 300_000 },
    async (t) => {
      const first = tt.cores[0]!;
      const load = Promise.all([creates('kill-a', LOAD / 2, 'gw1'), creates('kill-b', LOAD / 2, 'gw2')]);
      // Once requests are flowing through both cores, core 1 dies with what it holds.
      const start = executed(0);
      for (let i = 0; i < 100 && executed(0) - start < 5; i++) await new Promise((r) => setTimeout(r, 50));
      first.process.child.kill('SIGKILL');
      await first.process.exited;
      const answers = (await load).flat();
      allCreated(answers);
      for (const prefix of ['kill-a', 'kill-b']) {
        const counts = await countNotes(tt.core.postgres!, `${prefix}-%`);
        assert.equal(counts.size, LOAD / 2, `every ${prefix} request has its note`);
        for (const [title, n] of counts) assert.equal(n, 1, `${title} written once`);
      }
      t.diagnostic(`core 2 executed ${executed(1)} notes.create in all; core 1 was killed mid-load`);

      // Restarted, the first core takes its share again.
      await tt.restartCore(first);
      await new Promise((r) => setTimeout(r, 6000));
      const before = executed(0);
      allCreated(await creates('back', 20, 'gw1'));
      assert.ok(executed(0) > before, 'the restarted core answers again');
    },
  );
});
