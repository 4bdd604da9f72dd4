// The gateway's queue over several endpoints: an add that fails on the endpoint in use goes to
// the next one that is up, even when concurrent adds moved the endpoint in use meanwhile.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QueueSet } from '../../gateway/queue-set.js';
import type { AddOutcome, RequestQueue } from '../../gateway/request-queue.js';
import type { Envelope } from '../../lib/envelope.js';
import { silentLogger } from '../../lib/log.js';

/** An endpoint whose adds wait for the test and then fail or succeed as it says. */
class Endpoint {
  ready = true;
  readonly added: string[] = [];
  readonly pending: { id: string; settle: (ok: boolean) => void }[] = [];
  add(envelope: Envelope): Promise<AddOutcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({
        id: envelope.id,
        settle: (ok) => {
          if (!ok) return reject(new Error('connection closed'));
          this.added.push(envelope.id);
          resolve('queued');
        },
      });
    });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const envelope = (id: string) => ({ id }) as unknown as Envelope;
const tick = () => new Promise((r) => setImmediate(r));

test('an add that fails while another add moved the endpoint in use still goes to the one up', async () => {
  const [a, b] = [new Endpoint(), new Endpoint()];
  const set = new QueueSet([a, b] as unknown as RequestQueue[], ['a', 'b'], silentLogger());
  // Two adds in flight on endpoint a, whose connection then drops.
  const one = set.add(envelope('one'));
  const two = set.add(envelope('two'));
  await tick();
  assert.deepEqual(
    a.pending.map((p) => p.id),
    ['one', 'two'],
  );
  a.ready = false;
  // The first fails and moves to b, which takes it: b is now the endpoint in use.
  a.pending[0]!.settle(false);
  await tick();
  b.pending[0]!.settle(true);
  assert.equal(await one, 'queued');
  assert.equal(set.active, 1);
  // The second fails after that: it must try b too, not a again.
  a.pending[1]!.settle(false);
  await tick();
  assert.deepEqual(
    b.pending.map((p) => p.id),
    ['one', 'two'],
    'the second add went to b',
  );
  b.pending[1]!.settle(true);
  assert.equal(await two, 'queued');
  assert.deepEqual(b.added, ['one', 'two']);
});
