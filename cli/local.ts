// `nonstop local`: the three roles on loopback, sample requests traced through them.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseCommandArgs, untilSignal, type Command } from './command.js';
import { hops, SAMPLES, send } from './local-samples.js';
import { startLocalRedis } from './local-redis.js';
import { buildLocalWorld, type LocalWorld } from './local-world.js';

const READY_TIMEOUT_MS = 30_000;

export const localCommand: Command = {
  name: 'local',
  help: `Usage: nonstop local [--dir DIR] [--once] [--redis HOST:PORT]

Brings up the three tiers on this machine, each as its own process on loopback:
a core (embedded PGlite database in DIR/data), a broker and a gateway (HTTPS, with
HTTP redirecting to it), using the Redis at --redis (default: a redis-server of its own on
a free loopback port, nothing on disk, stopped with the rest). Keys and certificates are made
in DIR/pki on first run, configs are written to DIR, logs to DIR/logs/<role>.log.
Then it sends sample requests (valid, invalid, unknown route) through the gateway
and shows what each tier did with each one.

Options:
  --dir DIR           working folder (default .local)
  --redis HOST:PORT   the Redis the gateway queues into (default: its own)
  --once              exit after the samples: 0 when every answer was as expected
  -h, --help          show this help`,
  async run(argv) {
    const { values } = parseCommandArgs(argv, {
      dir: { type: 'string', default: '.local' },
      redis: { type: 'string' },
      once: { type: 'boolean', default: false },
    });
    if (values.help) {
      console.log(this.help);
      return 0;
    }
    console.log('nonstop local: making keys and configs, starting core, broker and gateway…');
    mkdirSync(values.dir, { recursive: true });
    const own = values.redis === undefined ? await startLocalRedis(resolve(values.dir)) : undefined;
    const [host, port] = (values.redis ?? '').split(':');
    const redis = own ?? { host: host || '127.0.0.1', port: Number(port || 6379) };
    let world: LocalWorld;
    try {
      world = await buildLocalWorld(values.dir, { host: redis.host, port: redis.port });
    } catch (err) {
      await own?.stop();
      throw err;
    }
    try {
      await untilUp(world);
      console.log(`  gateway  ${world.gatewayUrl}  (HTTP ${world.httpUrl} redirects here)`);
      console.log(`  broker   no listener; works queue gw-gw1`);
      console.log(`  core     ${world.coreUrl}  (mutual TLS, brokers only)`);
      console.log(
        `  redis    ${redis.host}:${redis.port}${own === undefined ? '' : ' (its own, nothing on disk)'}`,
      );
      console.log(`  logs     ${world.dir}/logs/\n`);
      const ok = await runSamples(world);
      if (values.once) return ok ? 0 : 1;
      console.log(`\nTry it yourself:
  curl --cacert ${world.pki.publicCa.cert} -H 'content-type: application/json' \\
       -d '{"title":"hello"}' ${world.gatewayUrl}/notes
  curl --cacert ${world.pki.publicCa.cert} ${world.gatewayUrl}/notes

Press Ctrl-C to stop.`);
      await untilSignal();
      return 0;
    } finally {
      console.log('nonstop local: stopping gateway, broker and core…');
      await world.stop();
      await own?.stop();
    }
  },
};

async function untilUp(world: LocalWorld): Promise<void> {
  const end = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < end) {
    for (const [role, child] of Object.entries(world.processes)) {
      if (child.exitCode !== null)
        throw new Error(`${role} exited with code ${child.exitCode}; see ${world.logs[role as 'core']}`);
    }
    const ready = await send(world, 'GET', '/readyz').catch(() => undefined);
    if (ready?.status === 200) {
      // The gateway can queue; make sure the broker and core answer too.
      const probe = await send(world, 'GET', '/notes?limit=1').catch(() => undefined);
      if (probe?.status === 200) return;
    }
    await sleep(200);
  }
  throw new Error(
    `the local world did not come up within ${READY_TIMEOUT_MS / 1000} s; see ${world.dir}/logs/`,
  );
}

async function runSamples(world: LocalWorld): Promise<boolean> {
  let noteId = '';
  let ok = true;
  for (const sample of SAMPLES) {
    const path = sample.path.replace(':id', noteId);
    const answer = await send(world, sample.method, path, sample.body);
    if (sample.method === 'POST' && answer.status === 201) {
      const id = (JSON.parse(answer.body) as { id?: unknown }).id;
      noteId = typeof id === 'string' ? id : '';
    }
    const good = answer.status === sample.expect;
    ok &&= good;
    console.log(
      `${good ? '✔' : '✘'} ${sample.label}: ${sample.method} ${path}${sample.body ? ` ${sample.body}` : ''}`,
    );
    console.log(`    → ${answer.status}${good ? '' : ` (expected ${sample.expect})`} ${clip(answer.body)}`);
    for (const hop of await hops(world, answer.requestId)) console.log(`      ${hop}`);
  }
  return ok;
}

function clip(text: string): string {
  return text.length > 160 ? `${text.slice(0, 157)}…` : text;
}
