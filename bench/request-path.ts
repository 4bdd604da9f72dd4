// Throughput and latency through the whole local path (gateway → Redis → broker → core on
// PGlite), each role its own process, as `nonstop local` runs them. Closed-loop load: C
// concurrent clients, each sending its next request when the last one is answered.
//   node dist/bench/request-path.js [--seconds 10] [--concurrency 32] [--redis HOST:PORT] [--pg URL]
import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { buildLocalWorld, type LocalWorld } from '../cli/local-world.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '32' },
    // A PostgreSQL URL for the core (schema nonstop_bench, dropped afterwards); default PGlite.
    pg: { type: 'string' },
    // The Redis the local world's queues use (a prefix of their own, removed afterwards).
    redis: { type: 'string', default: '127.0.0.1:6379' },
  },
});
const redisAt = /^(.+):(\d{1,5})$/.exec(values.redis);
if (redisAt === null) throw new Error(`--redis: expected HOST:PORT, got "${values.redis}"`);
const redis = { host: redisAt[1]!.replace(/^\[|\]$/g, ''), port: Number(redisAt[2]) };
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);

interface Result {
  readonly name: string;
  readonly requests: number;
  readonly errors: number;
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
}

function request(world: LocalWorld, agent: https.Agent, method: string, path: string, body?: string) {
  return new Promise<number>((resolve, reject) => {
    const req = https.request(
      new URL(path, world.gatewayUrl),
      { method, agent, servername: 'localhost', headers: body ? { 'content-type': 'application/json' } : {} },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function load(
  world: LocalWorld,
  name: string,
  method: string,
  path: string,
  body?: string,
): Promise<Result> {
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: concurrency,
    ca: readFileSync(world.pki.publicCa.cert),
  });
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const client = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const status = await request(world, agent, method, path, body).catch(() => 0);
      latencies.push(performance.now() - t0);
      if (status < 200 || status >= 300) errors++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, client));
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    Number(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(1));
  return {
    name,
    requests: latencies.length,
    errors,
    perSecond: Math.round(latencies.length / elapsed),
    p50: at(0.5),
    p99: at(0.99),
  };
}

const BENCH_SCHEMA = 'nonstop_bench';

async function dropBenchSchema(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${BENCH_SCHEMA} CASCADE`);
  await client.end();
}

if (values.pg !== undefined) await dropBenchSchema(values.pg);
const dir = mkdtempSync(join(tmpdir(), 'nonstop-bench-'));
// One client address sends everything, so the per-address rate limit is lifted here.
const world = await buildLocalWorld(dir, redis, {
  gatewayLimits: { ratePerSecond: 1_000_000, rateBurst: 1_000_000 },
  ...(values.pg === undefined ? {} : { database: { url: values.pg, schema: BENCH_SCHEMA, poolSize: 16 } }),
});
try {
  const agent = new https.Agent({ ca: readFileSync(world.pki.publicCa.cert) });
  let up = false;
  for (let i = 0; i < 150 && !up; i++) {
    up = (await request(world, agent, 'GET', '/notes?limit=1').catch(() => 0)) === 200;
    if (!up) await new Promise((r) => setTimeout(r, 200));
  }
  if (!up) throw new Error('the local world did not come up');
  const created = await new Promise<string>((resolve, reject) => {
    const req = https.request(
      new URL('/notes', world.gatewayUrl),
      { method: 'POST', agent, servername: 'localhost', headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve((JSON.parse(text) as { id: string }).id));
      },
    );
    req.on('error', reject);
    req.end('{"title":"bench"}');
  });
  await load(world, 'warm-up', 'GET', `/notes/${created}`); // JIT and connection pools
  const results = [
    await load(world, 'GET /notes/:id (read)', 'GET', `/notes/${created}`),
    await load(world, 'POST /notes (write)', 'POST', '/notes', '{"title":"bench","tags":["a","b"]}'),
    await load(world, 'POST /notes invalid (stops at broker)', 'POST', '/notes', '{"title":""}'),
  ];
  const database = values.pg === undefined ? 'PGlite' : 'PostgreSQL';
  console.log(
    `request path on loopback (core on ${database}), ${concurrency} concurrent clients, ${seconds} s each (HTTPS, keep-alive)`,
  );
  console.log('| request | req/s | p50 ms | p99 ms | requests | non-2xx |');
  console.log('|---|---|---|---|---|---|');
  for (const r of results)
    console.log(`| ${r.name} | ${r.perSecond} | ${r.p50} | ${r.p99} | ${r.requests} | ${r.errors} |`);
} finally {
  await world.stop();
  rmSync(dir, { recursive: true, force: true });
  if (values.pg !== undefined) await dropBenchSchema(values.pg);
}
