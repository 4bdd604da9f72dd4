// What a gateway Redis's CPU budget buys its neighbours: two gateway Redis servers rendered by
// `nonstop redis-acl`, each in a cgroup of its own with the budget its unit drop-in sets (as the
// world and systemd give them), on the same CPUs. One is burnt by a compromised gateway's O(N)
// commands (a list of 2 million read whole every 250 ms, a hash of 500 000 fields deleted and
// rebuilt: test/world/gateway-attacker.ts's attack (c)); the other serves a steady stream of
// small commands from this process (the broker's stand-in, systemd's default weight), whose
// round trips are measured. Each mode starts both servers afresh.
//   nice -n -10 taskset -c 1 node dist/bench/redis-cpu-budget.js [--seconds 10] [--rate 200]
//     [--weight 50] [--quotas none,100,50,25] [--peer-nice N] [--victim-plain]
// Pinning to one CPU makes the contention the budget is for: on a broker, the attacked Redis
// shares its cores with the broker and the other Redis servers. Run it at nice -10, as the attack
// suite runs its world, so that the machine's other work weighs less (the burner runs at 19).
// --peer-nice 0 gives the groups the unscaled cpu.shares (weight × 1024 / 100).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { ADMIN_USER, DEFAULT_WORKER_USER } from '../broker/redis-acl.js';
import { writeRedisServers, type WrittenRedisServer } from '../broker/redis-config.js';
import type { RedisServerLimits } from '../config/schemas/broker.js';
import { freePort } from '../lib/free-port.js';
import { BudgetCgroup, detectCgroups, peerNice } from '../world/cgroup.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rate: { type: 'string', default: '200' },
    weight: { type: 'string', default: '50' },
    quotas: { type: 'string', default: 'none,100,50,25' },
    // The nice the groups' weight is scaled to (world/cgroup.ts weightToShares): ours by default.
    'peer-nice': { type: 'string' },
    // Only the burnt Redis gets a group: tells the cost of a group to its member from its benefit.
    'victim-plain': { type: 'boolean', default: false },
    burner: { type: 'string' },
  },
});

const password = (s: WrittenRedisServer) => readFileSync(s.passwordFiles[ADMIN_USER]!, 'utf8').trim();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** The compromised gateway's side, in a process of its own (at nice 19, as in the attack suite). */
async function burn(port: number, pass: string): Promise<void> {
  const r = new Redis({ port, username: ADMIN_USER, password: pass });
  const build = async (key: string, target: number, cmd: 'rpush' | 'hset') => {
    for (let n = 0; n < target;) {
      const p = r.pipeline();
      for (let c = 0; c < 20; c++) {
        const args: string[] = [];
        for (let i = 0; i < 1000; i++, n++) args.push(...(cmd === 'rpush' ? [`e${n}`] : [`f${n}`, `${n}`]));
        p[cmd](key, ...args);
      }
      await p.exec();
    }
  };
  await build('list', 2_000_000, 'rpush');
  await build('hash', 500_000, 'hset');
  process.stdout.write('ready\n');
  // Redis drops this client once its output buffer passes the hard limit: it connects again.
  let s = new Socket();
  const open = () => {
    s = new Socket();
    s.connect(port, '127.0.0.1', () => s.write(resp('AUTH', ADMIN_USER, pass)));
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => setTimeout(open, 10));
  };
  open();
  setInterval(() => s.writable && s.write(resp('LRANGE', 'list', '0', '-1')), 250);
  for (;;) {
    await r.del('hash');
    await build('hash', 500_000, 'hset');
  }
}

if (values.burner !== undefined) {
  const [port, pass] = values.burner.split(':');
  await burn(Number(port), pass!);
}

interface ModeResult {
  readonly mode: string;
  readonly samples: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** CPU the burnt Redis used, in percent of one CPU. */
  readonly burntCpuPercent: number;
}

function cpuTicks(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function waitReady(port: number, pass: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = new Redis({
      port,
      username: ADMIN_USER,
      password: pass,
      lazyConnect: true,
      retryStrategy: () => null,
    });
    r.on('error', () => {});
    try {
      await r.connect();
      await r.ping();
      r.disconnect();
      return;
    } catch {
      r.disconnect();
      await sleep(50);
    }
  }
  throw new Error(`redis on ${port} did not start`);
}

async function runMode(
  dir: string,
  mode: string,
  limits: RedisServerLimits | undefined,
  burnt: boolean,
): Promise<ModeResult> {
  const plans = [];
  for (const id of ['gwa', 'gwv'])
    plans.push({ gatewayId: id, port: await freePort(), prefix: 'nonstop', workerUser: DEFAULT_WORKER_USER });
  const servers = writeRedisServers(
    join(dir, mode),
    plans,
    limits ?? { ...baseLimits, cpuQuotaPercent: null },
  );
  const support = detectCgroups();
  if (limits !== undefined && support.version === 0) throw new Error(`no cgroups: ${support.reason}`);
  const children: ChildProcess[] = [];
  const groups: BudgetCgroup[] = [];
  let burner: ChildProcess | undefined;
  try {
    for (const s of servers) {
      const child = spawn('redis-server', [s.configFile], { stdio: 'ignore' });
      children.push(child);
      if (limits !== undefined && !(values['victim-plain'] && s.gatewayId === 'gwv')) {
        const cg = BudgetCgroup.create(
          support,
          `nonstop-bench-${process.pid}-${mode}-${s.gatewayId}`,
          s.budget,
          values['peer-nice'] === undefined ? peerNice() : Number(values['peer-nice']),
        );
        groups.push(cg);
        cg.add(child.pid!);
      }
      await waitReady(s.port, password(s));
    }
    const [attacked, victim] = servers as [WrittenRedisServer, WrittenRedisServer];
    if (burnt) {
      burner = spawn(
        process.execPath,
        [process.argv[1]!, '--burner', `${attacked.port}:${password(attacked)}`],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      setPriority(burner.pid!, 19);
      await new Promise<void>((resolve, reject) => {
        burner!.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        burner!.once('exit', (code) => reject(new Error(`burner exited ${code}`)));
      });
      await sleep(1000);
    }
    const r = new Redis({ port: victim.port, username: ADMIN_USER, password: password(victim) });
    const seconds = Number(values.seconds);
    const rate = Number(values.rate);
    const pid = children[0]!.pid!;
    const ticks0 = cpuTicks(pid);
    const t0 = performance.now();
    const times: Promise<number>[] = [];
    // Open loop: each command is sent at its time whatever the previous ones took.
    for (let i = 0; i < seconds * rate; i++) {
      const due = t0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      times.push(r.set(`k${i % 100}`, 'v').then(() => performance.now() - due));
    }
    const lat = (await Promise.all(times)).sort((a, b) => a - b);
    const burntCpuPercent = ((cpuTicks(pid) - ticks0) / 100 / ((performance.now() - t0) / 1000)) * 100;
    r.disconnect();
    const round = (x: number) => Math.round(x * 100) / 100;
    return {
      mode,
      samples: lat.length,
      p50Ms: round(quantile(lat, 0.5)),
      p99Ms: round(quantile(lat, 0.99)),
      maxMs: round(lat.at(-1) ?? NaN),
      burntCpuPercent: Math.round(burntCpuPercent),
    };
  } finally {
    burner?.kill('SIGKILL');
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(
      children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : Promise.resolve())),
    );
    for (const g of groups) await g.remove();
  }
}

const baseLimits: RedisServerLimits = {
  maxMemoryMb: 1024,
  maxClients: 32,
  maxJobBytes: 4 * 1024 * 1024,
  idleTimeoutSeconds: 300,
  cpuWeight: Number(values.weight),
  cpuQuotaPercent: null,
};

if (values.burner === undefined) {
  const dir = mkdtempSync(join(tmpdir(), 'nonstop-redis-cpu-'));
  try {
    const results: ModeResult[] = [];
    results.push(await runMode(dir, 'idle', undefined, false));
    results.push(await runMode(dir, 'burn-no-budget', undefined, true));
    for (const q of values.quotas.split(',')) {
      const quota = q === 'none' ? null : Number(q);
      const mode = `burn-weight${baseLimits.cpuWeight}-quota${q}`;
      results.push(await runMode(dir, mode, { ...baseLimits, cpuQuotaPercent: quota }, true));
    }
    for (const r of results) console.log(JSON.stringify(r));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
