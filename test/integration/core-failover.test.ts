// Two core hosts on one database (issue #16): the broker's CoreClient with `core.url` and
// `core.peers` spreads requests across both, and when one is SIGKILLed mid-load (`nonstop core`
// as a child process, transactions in flight) every request is answered by the other, each note
// written exactly once.
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test, type TestContext } from 'node:test';
import { CoreClient } from '../../broker/core-client.js';
import { silentLogger } from '../../lib/log.js';
import { EXAMPLE_ROUTES_FILE } from '../helpers/core.js';
import { makeEnvelope } from '../helpers/envelope.js';
import { tempDir } from '../helpers/files.js';
import { startCli, waitForLogLine } from '../helpers/cli.js';
import { sql, useTestSchema } from '../helpers/pg.js';
import { usePki, type TestPki } from '../helpers/pki.js';

interface CoreProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly url: string;
  /** Execute requests it logged answering (its log's request lines). */
  executed(): number;
}

async function startCoreProcess(
  t: TestContext,
  pki: TestPki,
  database: { url: string; schema: string },
  name: string,
): Promise<CoreProcess> {
  const dir = tempDir(t);
  const file = join(dir, `${name}.json`);
  await writeFile(
    file,
    JSON.stringify({
      kind: 'core',
      routes: EXAMPLE_ROUTES_FILE,
      listen: { host: '127.0.0.1', port: 0 },
      tls: { ca: pki.ca.cert, cert: pki.core.cert, key: pki.core.key },
      database,
    }),
  );
  const child = startCli(['core', '--config', file]);
  t.after(() => child.kill('SIGKILL'));
  // Whole lines (a chunk may end mid-line), each a JSON log line.
  let executed = 0;
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    const entry = JSON.parse(line) as { route?: string; status?: number };
    if (entry.route === 'notes.create' && entry.status === 200) executed++;
  });
  const listening = await waitForLogLine(child, (l) => l.msg === 'core listening');
  return { child, url: `https://127.0.0.1:${String(listening.port)}`, executed: () => executed };
}

function client(pki: TestPki, url: string, peers: string[]): CoreClient {
  const b1 = pki.brokers.b1!;
  return new CoreClient(
    { url, peers, ca: pki.ca.cert, cert: b1.cert, key: b1.key, maxSockets: 64, attemptTimeoutMs: 2000 },
    silentLogger(),
  );
}

const create = (title: string) =>
  makeEnvelope({ route: 'notes.create', method: 'POST', path: '/notes', body: { title } });

describe('two core hosts on one database', () => {
  const pki = usePki();

  test('requests are spread across both; one SIGKILLed mid-load loses nothing and doubles nothing', async (t) => {
    const database = await useTestSchema(t);
    const a = await startCoreProcess(t, pki(), database, 'core-a');
    const b = await startCoreProcess(t, pki(), database, 'core-b');
    const core = client(pki(), a.url, [b.url]);
    t.after(() => core.close());

    // Spread: both hosts answer a share.
    for (let i = 0; i < 20; i++) assert.equal((await core.execute(create(`spread-${i}`))).status, 201);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(a.executed() > 0 && b.executed() > 0, `a ${a.executed()}, b ${b.executed()}`);

    // Failover: 200 requests, 20 at a time; core A is killed once 40 are answered.
    const total = 200;
    const envelopes = Array.from({ length: total }, (_, i) => create(`failover-${i}`));
    let answered = 0;
    let next = 0;
    const statuses: number[] = [];
    const worker = async () => {
      while (next < total) {
        const e = envelopes[next++]!;
        const answer = await core.execute(e);
        statuses.push(answer.status);
        if (++answered === 40) a.child.kill('SIGKILL');
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));
    assert.equal(a.child.exitCode ?? a.child.signalCode, 'SIGKILL', 'core A was killed mid-load');
    assert.deepEqual(
      statuses.filter((s) => s !== 201),
      [],
    );
    const { rows } = await sql(
      `SELECT title, count(*)::int AS n FROM ${database.schema}.notes WHERE title LIKE 'failover-%' GROUP BY title`,
    );
    const counts = new Map((rows as { title: string; n: number }[]).map((r) => [r.title, r.n]));
    assert.equal(counts.size, total, 'every request has its note');
    for (const [title, n] of counts) assert.equal(n, 1, `${title} written once`);
  });
});
