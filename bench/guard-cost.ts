// The knock guard's cost under a bounded flood of spoofed SYNs, side by side with knockd under
// the same flood: two gateway-like hosts, one with `nonstop guard` (the same static sequence
// knockd gets, plus a rotating range), one with knockd listening on its interface; the same
// packet mix (a third to random ports, a third to the knock range, a third to the sequence's
// first port) sent at each in turn from the internet host.
//
// And the SPA side: a guard with an SPA port (as configured: nftables holds a flood to its rate
// limits before the daemon; and with those limits lifted, so that every datagram costs the
// daemon its HMACs) and fwknopd with as many clients, under one flood of spoofed UDP datagrams
// that look like SPA packets (base64 text of a packet's length, so each costs an HMAC per key).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Host, HostProcess, World } from '../world/world.js';
import { startGuard } from '../test/e2e/gateway.js';
import { generateSpaKeys } from '../knock/spa.js';
import { startFwknopd } from '../world/fwknopd.js';
import type { FloodCost } from './report.js';
import { sampleProc } from './proc.js';

const AGENT = 'dist/test/world/agent.js';
const SEQUENCE = ['21000', '22000', '23000'];
const KNOCK_RANGE = '20000-29999';
const ROTATING = { portMin: 20000, portMax: 29999, length: 4, stepSeconds: 30 };

export interface FloodSides {
  readonly guard: { host: Host; process: HostProcess };
  readonly knockd: { host: Host; process: HostProcess };
}

export async function startFloodTargets(world: World): Promise<FloodSides> {
  const guardHost = await world.addHost('flood-guard', { public: 1 });
  const guardDir = join(world.dir, 'flood-guard');
  mkdirSync(guardDir, { recursive: true });
  const guard = await startGuard(guardHost, guardDir, {
    kind: 'guard',
    gateway: 'gwflood',
    statsIntervalSeconds: 1,
    static: [{ name: 'ops', sequence: SEQUENCE }],
    rotating: { ...ROTATING, clients: [{ name: 'b1', secret: 'F'.repeat(43) }] },
  });
  await guard.waitForLine((l) => l.includes('"event":"stats"'), 15000);

  const kdHost = await world.addHost('flood-knockd', { public: 1 });
  const dir = join(world.dir, 'flood-knockd');
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'knockd.conf');
  writeFileSync(
    conf,
    [
      '[options]',
      `  LogFile = ${join(dir, 'knockd.log')}`,
      `  PidFile = ${join(dir, 'knockd.pid')}`,
      '  Interface = pub0',
      '[openSSH]',
      `  sequence = ${SEQUENCE.join(',')}`,
      '  seq_timeout = 5',
      '  tcpflags = syn',
      `  command = /usr/bin/touch ${join(dir, 'opened')}-%IP%`,
      '',
    ].join('\n'),
  );
  const knockd = kdHost.spawn('/usr/sbin/knockd', ['-c', conf, '-i', 'pub0']);
  // Not verbose (-v would print every packet): it says it listens in its log file.
  const log = join(dir, 'knockd.log');
  for (let i = 0; !(existsSync(log) && readFileSync(log, 'utf8').includes('listening on pub0')); i++) {
    if (i > 100 || !knockd.running) throw new Error(`knockd did not start: ${knockd.stderrLines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { guard: { host: guardHost, process: guard }, knockd: { host: kdHost, process: knockd } };
}

function guardReceived(guard: HostProcess): number | undefined {
  const stats = guard.jsonLines().filter((l) => l.event === 'stats');
  const n = Number(stats.at(-1)?.received);
  return Number.isFinite(n) ? n : undefined;
}

const synFlood = (target: Host, packets: number) => [
  'flood',
  target.ip4,
  '--count',
  String(packets),
  '--seconds',
  '60',
  '--knock-ports',
  KNOCK_RANGE,
  '--hot-ports',
  SEQUENCE[0]!,
];

async function floodOne(
  inet: Host,
  target: Host,
  proc: HostProcess,
  agentArgs: string[],
): Promise<FloodCost> {
  const before = sampleProc(proc.pid);
  const seenBefore = guardReceived(proc);
  const r = await inet.runNode(AGENT, agentArgs, { timeoutMs: 90000 });
  if (r.code !== 0) throw new Error(`flood failed: ${r.stderr}`);
  const sent = JSON.parse(r.stdout) as { sent: number; ms: number };
  // Let the daemon drain what is queued for it (and the guard log a stats line).
  await new Promise((res) => setTimeout(res, 1500));
  if (!proc.running) throw new Error(`${target.name}: the daemon died under the flood`);
  const after = sampleProc(proc.pid);
  const seenAfter = guardReceived(proc);
  const cpuSeconds = after.cpuSeconds - before.cpuSeconds;
  return {
    packets: sent.sent,
    floodSeconds: sent.ms / 1000,
    cpuSeconds: Number(cpuSeconds.toFixed(2)),
    systemSeconds: Number((after.systemSeconds - before.systemSeconds).toFixed(2)),
    cpuSecondsPer10k: Number(((cpuSeconds * 10000) / Math.max(1, sent.sent)).toFixed(3)),
    rssKiBBefore: before.rssKiB,
    rssKiBAfter: after.rssKiB,
    ...(seenBefore !== undefined && seenAfter !== undefined ? { seen: seenAfter - seenBefore } : {}),
  };
}

/** Floods the guard, then knockd, with the same packet mix. */
export async function measureFlood(
  inet: Host,
  sides: FloodSides,
  packets: number,
): Promise<{ guard: FloodCost; knockd: FloodCost }> {
  const guard = await floodOne(
    inet,
    sides.guard.host,
    sides.guard.process,
    synFlood(sides.guard.host, packets),
  );
  const knockd = await floodOne(
    inet,
    sides.knockd.host,
    sides.knockd.process,
    synFlood(sides.knockd.host, packets),
  );
  return { guard, knockd };
}

const SPA_PORT = 62201;
const SPA_CLIENTS = 2;

export interface SpaFloodSides {
  readonly guard: { host: Host; process: HostProcess };
  readonly guardUnlimited: { host: Host; process: HostProcess };
  readonly fwknopd: { host: Host; process: HostProcess };
}

/** Two guards with an SPA port (their default limits; limits lifted) and fwknopd, same keys. */
export async function startSpaFloodTargets(world: World): Promise<SpaFloodSides> {
  const clients = Array.from({ length: SPA_CLIENTS }, (_, i) => {
    const k = generateSpaKeys(`c${i}`);
    return { name: k.name, key: k.encryptionKey.toString('base64'), hmacKey: k.hmacKey.toString('base64') };
  });
  const guardOn = async (name: string, limits: object) => {
    const host = await world.addHost(name, { public: 1 });
    const dir = join(world.dir, name);
    mkdirSync(dir, { recursive: true });
    const process = await startGuard(host, dir, {
      kind: 'guard',
      gateway: 'gwflood',
      statsIntervalSeconds: 1,
      spa: { port: SPA_PORT, clients, ...limits },
    });
    await process.waitForLine((l) => l.includes('"event":"stats"'), 15000);
    return { host, process };
  };
  const guard = await guardOn('spa-guard', {});
  const guardUnlimited = await guardOn('spa-guard-nolimit', {
    packetsPerSecond: 1_000_000,
    perSourcePacketsPerSecond: 100_000,
  });
  const fwHost = await world.addHost('spa-fwknopd', { public: 1 });
  const fwDir = join(world.dir, 'spa-fwknopd');
  mkdirSync(fwDir, { recursive: true });
  const fwknopd = await startFwknopd(fwHost, fwDir, {
    port: SPA_PORT,
    clients,
    openCommand: `/usr/bin/touch ${fwDir}/opened-%c`,
  });
  return { guard, guardUnlimited, fwknopd: { host: fwHost, process: fwknopd } };
}

/** The same flood of SPA-looking datagrams at each SPA side in turn. */
export async function measureSpaFlood(
  inet: Host,
  sides: SpaFloodSides,
  packets: number,
): Promise<{ guard: FloodCost; guardUnlimited: FloodCost; fwknopd: FloodCost }> {
  const args = (target: Host) => [
    'udp-flood',
    target.ip4,
    String(SPA_PORT),
    '--count',
    String(packets),
    '--seconds',
    '60',
    '--size',
    '180',
  ];
  const out: Partial<Record<keyof SpaFloodSides, FloodCost>> = {};
  for (const side of ['guard', 'guardUnlimited', 'fwknopd'] as const)
    out[side] = await floodOne(inet, sides[side].host, sides[side].process, args(sides[side].host));
  return { guard: out.guard!, guardUnlimited: out.guardUnlimited!, fwknopd: out.fwknopd! };
}
