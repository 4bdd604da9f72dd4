// What an idle Redis per gateway costs a broker: starts N redis-servers from the redis.conf
// `nonstop redis-acl` renders (default limits), each with the connections a gateway and a broker
// hold (2 + 3, authenticated, idle), and measures their RSS and CPU over a quiet interval.
//   node dist/bench/redis-idle.js [--count 50] [--seconds 60]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { ADMIN_USER, DEFAULT_WORKER_USER, gatewayUser } from '../broker/redis-acl.js';
import { writeRedisServers } from '../broker/redis-config.js';
import { REDIS_CPU_QUOTA_PERCENT, REDIS_CPU_WEIGHT } from '../config/schemas/broker.js';
import { freePort } from '../lib/free-port.js';

const { values } = parseArgs({
  options: { count: { type: 'string', default: '50' }, seconds: { type: 'string', default: '60' } },
});
const count = Number(values.count);
const seconds = Number(values.seconds);
const TICKS = 100; // USER_HZ on Linux

function stat(pid: number): { rssKb: number; ticks: number } {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // Fields after the command: state is [0]; utime [11], stime [12]; rss (pages) [21].
  return { ticks: Number(f[11]) + Number(f[12]), rssKb: (Number(f[21]) * 4096) / 1024 };
}

const dir = mkdtempSync(join(tmpdir(), 'nonstop-redis-idle-'));
const children: ChildProcess[] = [];
const clients: Redis[] = [];
try {
  const plans = [];
  for (let i = 0; i < count; i++)
    plans.push({
      gatewayId: `gw${i + 1}`,
      port: await freePort(),
      prefix: 'nonstop',
      workerUser: DEFAULT_WORKER_USER,
    });
  const limits = {
    maxMemoryMb: 256,
    maxClients: 32,
    maxJobBytes: 4 * 1024 * 1024,
    idleTimeoutSeconds: 300,
    cpuWeight: REDIS_CPU_WEIGHT,
    cpuQuotaPercent: REDIS_CPU_QUOTA_PERCENT,
  };
  const servers = writeRedisServers(dir, plans, limits);
  for (const s of servers) children.push(spawn('redis-server', [s.configFile], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 2000));
  for (const s of servers) {
    const pw = (u: string) => readFileSync(s.passwordFiles[u]!, 'utf8').trim();
    for (const user of [
      gatewayUser(s.gatewayId),
      gatewayUser(s.gatewayId),
      DEFAULT_WORKER_USER,
      DEFAULT_WORKER_USER,
      DEFAULT_WORKER_USER,
    ]) {
      const c = new Redis({ port: s.port, username: user, password: pw(user), enableReadyCheck: false });
      c.on('error', () => {});
      clients.push(c);
    }
    const admin = new Redis({ port: s.port, username: ADMIN_USER, password: pw(ADMIN_USER) });
    const n = ((await admin.call('CLIENT', 'LIST')) as string).trim().split('\n').length;
    admin.disconnect();
    if (n < 5) throw new Error(`${s.gatewayId}: ${n} clients connected`);
  }
  await new Promise((r) => setTimeout(r, 3000));
  const before = children.map((c) => stat(c.pid!));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = children.map((c) => stat(c.pid!));
  const rss = after.map((a) => a.rssKb).sort((a, b) => a - b);
  const cpu = after.map((a, i) => (a.ticks - before[i]!.ticks) / TICKS / seconds);
  const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
  console.log(
    JSON.stringify({
      redisServers: count,
      idleSeconds: seconds,
      clientsEach: 5,
      rssKbEach: { min: rss[0], median: rss[Math.floor(rss.length / 2)], max: rss.at(-1) },
      rssMbTotal: Math.round(sum(rss) / 1024),
      cpuPercentEach: Number(((sum(cpu) / count) * 100).toFixed(3)),
      cpuPercentTotal: Number((sum(cpu) * 100).toFixed(2)),
    }),
  );
} finally {
  for (const c of clients) c.disconnect();
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
