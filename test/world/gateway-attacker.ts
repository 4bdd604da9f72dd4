// A compromised gateway, run inside that gateway's namespace with everything the gateway holds:
// its Redis ACL user and password, and its tunnel ports on loopback (each reaches one broker's
// Redis). It runs one attack against every port, prints {"event":"ready",…} once the pressure is
// established, keeps pressing until stdin closes, then removes what it wrote and prints
// {"event":"done",…} with what it achieved. Every write stays within its own queue's keys.
//
// argv[2]: { attack: Attack, ports: number[], user: string, passwordFile: string, prefix: string,
//            gateway: string, otherGateway: string }
import { readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { queueName } from '../../lib/envelope.js';
import { kind, resp, sleep, writeValue, type Target } from './attack-target.js';
import { forged, oversized } from './gateway-attacks-jobs.js';

type Attack = 'memory-fill' | 'unread-buffers' | 'o-n-stalls' | 'channel-flood' | 'forged-jobs' | 'oversized';

interface Options {
  readonly attack: Attack;
  readonly ports: readonly number[];
  readonly user: string;
  readonly passwordFile: string;
  readonly prefix: string;
  readonly gateway: string;
  readonly otherGateway: string;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const password = readFileSync(options.passwordFile, 'utf8').trim();
let stopping = false;
const stopped = new Promise<void>((resolve) => {
  process.stdin.on('data', () => {});
  process.stdin.on('end', () => {
    stopping = true;
    resolve();
  });
});

const connections: Redis[] = [];
function target(port: number, report: Record<string, unknown>): Target {
  const counts: Record<string, number> = {};
  report.counts = counts;
  return {
    port,
    base: `${options.prefix}:${queueName(options.gateway)}`,
    otherBase: `${options.prefix}:${queueName(options.otherGateway)}`,
    prefix: options.prefix,
    gateway: options.gateway,
    user: options.user,
    password,
    connect(how = {}) {
      const r = new Redis({
        host: '127.0.0.1',
        port,
        username: options.user,
        password,
        enableReadyCheck: false,
        maxRetriesPerRequest: how.once === true ? 0 : 2,
        autoResendUnfulfilledCommands: how.once !== true,
        retryStrategy: () => (stopping ? null : 200),
      });
      r.on('error', () => {});
      connections.push(r);
      return r;
    },
    stopping: () => stopping,
    count(what, n = 1) {
      counts[what] = (counts[what] ?? 0) + n;
    },
    note(key, value) {
      report[key] = value;
    },
    keys: new Set(),
    stopped,
  };
}

/** (a) Its own keys through the port until Redis refuses; then it keeps trying. */
async function memoryFill(t: Target, ready: () => void): Promise<void> {
  const value = Buffer.alloc(1 << 20, 'm');
  const budget = 4 * 2 ** 30; // the machine is shared: never more than 4 GiB per port
  let written = 0;
  let refusedAt: number | undefined;
  let writer: string | undefined;
  let seq = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      const r = t.connect();
      while (!t.stopping()) {
        const key = `${t.base}:x:fill:${seq++}`;
        try {
          if (written >= budget) throw new Error('BUDGET');
          writer = await writeValue(r, key, value, writer);
          t.keys.add(key);
          written += value.length;
          t.count('written');
        } catch (err) {
          t.count(kind(err));
          refusedAt ??= written;
          if (refusedAt !== undefined) ready();
          await sleep(100);
        }
      }
    }),
  );
  t.note('writtenMiB', Math.round(written / (1 << 20)));
  t.note('refusedAtMiB', refusedAt === undefined ? null : Math.round(refusedAt / (1 << 20)));
}

/** (b) One big key of its own, read over and over on many connections that never read the answers. */
async function unreadBuffers(t: Target, ready: () => void): Promise<void> {
  const r = t.connect();
  const key = `${t.base}:x:big`;
  let size = 8 << 20;
  let writer: string;
  for (;;) {
    try {
      writer = await writeValue(r, key, Buffer.alloc(size, 'b'));
      t.keys.add(key);
      break;
    } catch (err) {
      t.count(`create ${kind(err)}`);
      if (size <= 1 << 16 || t.stopping()) return ready();
      size >>= 1;
    }
  }
  t.note('bigKeyMiB', size / (1 << 20));
  const read = {
    set: ['GET', key],
    hset: ['HGET', key, 'v'],
    rpush: ['LRANGE', key, '0', '-1'],
    xadd: ['XRANGE', key, '-', '+'],
  }[writer]!;
  // At most ~1.5 GiB of unread answers asked for at once per port (the machine is shared).
  const sockets = 24;
  const perSocket = Math.max(1, Math.floor((1.5 * (1 << 30)) / size / sockets));
  t.note('unreadAskedMiB', Math.round((sockets * perSocket * size) / (1 << 20)));
  const open = (): void => {
    if (t.stopping()) return;
    const s = new Socket();
    s.connect(t.port, '127.0.0.1', () => {
      s.pause(); // never read: the answers pile up behind the tunnel, in Redis
      s.write(resp('AUTH', t.user, t.password) + resp(...read).repeat(perSocket));
      t.count('connections');
    });
    s.on('error', () => {});
    s.on('close', () => {
      t.count('closed by the other side');
      if (!t.stopping()) setTimeout(open, 200);
    });
    sockets_.push(s);
  };
  const sockets_: Socket[] = [];
  for (let i = 0; i < sockets; i++) open();
  await sleep(3000);
  ready();
  await t.stopped;
  for (const s of sockets_) s.destroy();
}

/** (c) A list of millions of its own elements read whole, and a hash of half a million fields deleted and rebuilt. */
async function oNStalls(t: Target, ready: () => void): Promise<void> {
  const r = t.connect();
  const list = `${t.base}:x:list`;
  const hash = `${t.base}:x:hash`;
  t.keys.add(list);
  t.keys.add(hash);
  const build = async (key: string, target: number, cmd: 'rpush' | 'hset'): Promise<number> => {
    let n = 0;
    while (n < target && !t.stopping()) {
      const p = r.pipeline();
      for (let c = 0; c < 20; c++) {
        const args: string[] = [];
        for (let i = 0; i < 1000; i++, n++) args.push(...(cmd === 'rpush' ? [`e${n}`] : [`f${n}`, `${n}`]));
        p[cmd](key, ...args);
      }
      const results = (await p.exec()) ?? [];
      const failed = results.find(([err]) => err !== null);
      if (failed) {
        t.count(`build ${kind(failed[0])}`);
        return n;
      }
    }
    return n;
  };
  t.note('listElements', await build(list, 2_000_000, 'rpush'));
  t.note('hashFields', await build(hash, 500_000, 'hset'));
  ready();
  // The list read whole, on a raw socket that discards the answer (as fast as it comes).
  const s = new Socket();
  s.connect(t.port, '127.0.0.1', () => s.write(resp('AUTH', t.user, t.password)));
  s.on('data', (d: Buffer) => t.count('lrange bytes', d.length));
  s.on('error', () => {});
  const lranges = (async () => {
    while (!t.stopping()) {
      s.write(resp('LRANGE', list, '0', '-1'));
      t.count('lrange');
      await sleep(250);
    }
    s.destroy();
  })();
  while (!t.stopping()) {
    try {
      await r.del(hash);
      t.count('del');
    } catch (err) {
      t.count(`del ${kind(err)}`);
      await sleep(200);
    }
    await build(hash, 500_000, 'hset');
  }
  await lranges;
}

/** (d) As many connections to its tunnel port as it can hold; each closed one is opened again. */
async function channelFlood(t: Target, ready: () => void): Promise<void> {
  const want = 7000;
  let open = 0;
  let peak = 0;
  const sockets = new Set<Socket>();
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const s = new Socket();
      let connected = false;
      s.connect(t.port, '127.0.0.1', () => {
        connected = true;
        peak = Math.max(peak, ++open);
        t.count('opened');
        resolve();
      });
      s.on('error', (err) => t.count(kind(err)));
      s.on('close', () => {
        sockets.delete(s);
        if (connected) open--;
        else resolve();
        t.count('closed');
        if (!t.stopping()) setTimeout(() => void one(), 50);
      });
      sockets.add(s);
    });
  const started = Date.now();
  for (let i = 0; i < want && !t.stopping() && Date.now() - started < 30_000; i += 200)
    await Promise.all(Array.from({ length: Math.min(200, want - i) }, one));
  t.note('openAtReady', open);
  ready();
  await t.stopped;
  t.note('peakOpen', peak);
  for (const s of sockets) s.destroy();
}

const attacks: Record<Attack, (t: Target, ready: () => void) => Promise<void>> = {
  'memory-fill': memoryFill,
  'unread-buffers': unreadBuffers,
  'o-n-stalls': oNStalls,
  'channel-flood': channelFlood,
  'forged-jobs': forged,
  oversized,
};

const reports: Record<string, unknown>[] = [];
let readyCount = 0;
await Promise.all(
  options.ports.map(async (port) => {
    const report: Record<string, unknown> = { port };
    reports.push(report);
    const t = target(port, report);
    let isReady = false;
    const ready = () => {
      if (isReady) return;
      isReady = true;
      if (++readyCount === options.ports.length) console.log(JSON.stringify({ event: 'ready', reports }));
    };
    try {
      await attacks[options.attack](t, ready);
    } catch (err) {
      report.error = err instanceof Error ? err.message.slice(0, 300) : String(err);
      ready();
    }
    await stopped;
    // Cleanup: its own keys, in batches.
    const r = t.connect();
    const keys = [...t.keys];
    for (let i = 0; i < keys.length; i += 500) await r.del(...keys.slice(i, i + 500)).catch(() => {});
  }),
);
console.log(JSON.stringify({ event: 'done', reports }));
for (const r of connections) r.disconnect();
process.exit(0);
