// A gateway's ACME challenge store in a process of its own, run inside a gateway host of the
// world with that gateway's config (its Redis endpoints are its tunnels to every broker):
//   publish <gateway.json> <answer JSON> <confirmTimeoutMs>  prints {"relayed":bool}
//   lookup <gateway.json> <type> <token|name> <timeoutMs>    prints {"keyAuthorization":…|null}
// What it published stays in the outboxes (until its expiry) after it exits.
import { loadConfig } from '../../config/load.js';
import type { ChallengeAnswer } from '../../gateway/acme/challenges.js';
import { RelayedChallengeStore } from '../../gateway/acme/relayed-challenges.js';
import { silentLogger } from '../../lib/log.js';

const [action, file, ...rest] = process.argv.slice(2);
const config = loadConfig('gateway', file!);

async function main(): Promise<unknown> {
  if (action === 'publish') {
    const answer = JSON.parse(rest[0]!) as ChallengeAnswer;
    const store = RelayedChallengeStore.connect(config.redis, config.id, 'e2e-publisher', silentLogger(), {
      pollMs: 100,
      confirmTimeoutMs: Number(rest[1]),
    });
    store.start();
    await store.publish(answer);
    const relayed = store.relayed(answer);
    store.close();
    return { relayed };
  }
  if (action === 'lookup') {
    const [type, key, timeoutMs] = rest;
    const store = RelayedChallengeStore.connect(config.redis, config.id, 'e2e-lookup', silentLogger(), {
      pollMs: 100,
    });
    store.start();
    const end = Date.now() + Number(timeoutMs);
    let found: string | undefined;
    while (found === undefined && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
      found = type === 'http-01' ? store.httpAnswer(key!) : store.tlsAlpnAnswer(key!);
    }
    store.close();
    return { keyAuthorization: found ?? null };
  }
  throw new Error(`unknown action ${String(action)}`);
}

main().then(
  (out) => {
    process.stdout.write(`${JSON.stringify(out)}\n`);
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
