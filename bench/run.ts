// `npm run bench`: nonstop and its peers side by side, in one run, in the namespace world
// (world/three-tier.ts: inet, two gateways, two brokers, the core; plus a peer gateway host
// with nginx and an `ssh -R` tunnel from broker b1, and two hosts for the flood comparison).
//   node dist/bench/run.js [--smoke] [--seconds N] [--out DIR] [--name NAME]
// Writes DIR/NAME.md, DIR/NAME.json and DIR/NAME.svg (default bench/results/latest.*).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generatePki } from '../lib/pki.js';
import { ThreeTier, type BrokerNode } from '../world/three-tier.js';
import { packageRoot } from '../world/world.js';
import { measureFlood, measureSpaFlood, startFloodTargets, startSpaFloodTargets } from './guard-cost.js';
import { startPeer } from './peer.js';
import { RssWatcher, sampleProc } from './proc.js';
import { measureRecovery } from './recovery.js';
import { machine, renderMarkdown, renderSvg, type BenchResults, type GuardCost } from './report.js';
import { measureLightLoad, measureRequestPath, runLoadIn, type Target } from './request-rows.js';

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    seconds: { type: 'string' },
    out: { type: 'string', default: join(packageRoot(), 'bench', 'results') },
    name: { type: 'string' },
  },
});
const smoke = values.smoke;
const seconds = Number(values.seconds ?? (smoke ? 1 : 10));
if (!(seconds > 0)) throw new Error('--seconds must be a positive number');
const rounds = smoke ? 1 : 2;
/** Requests per second of the light-load row. */
const LIGHT_RATE = 20;
const name = values.name ?? (smoke ? 'smoke' : 'latest');
const started = Date.now();
const progress = (line: string) =>
  console.error(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);

const loadBefore = machine().loadAverage;
const tt = await ThreeTier.start({ progress });
try {
  progress('three tiers up');
  const gw = tt.gateways[0]!;
  const b1 = tt.brokers[0]!;
  // A client certificate for the bench (direct client and the peer's nginx) and a public
  // certificate for the peer gateway, from the world's own CAs.
  const peerHost = await tt.world.addHost('peer-gw', { public: 1 });
  const extra = await generatePki({
    dir: join(tt.dir, 'pki'),
    brokers: ['bench'],
    gateways: ['peer'],
    coreNames: ['core', tt.core.ip],
    gatewayNames: [peerHost.ip4],
  });
  const client = extra.brokers.bench!;
  const peer = await startPeer({
    world: tt.world,
    gateway: peerHost,
    broker: b1.host,
    core: { ip: tt.core.ip, port: tt.core.port, serverName: 'core' },
    internal: { ca: tt.core.caFile, cert: client.cert, key: client.key },
    publicTls: extra.gateways.peer!,
  });
  progress('peer up: nginx on peer-gw, ssh -R from b1 to the core');

  /** Jobs each broker answered for gw1 so far (its /metrics, on its loopback). */
  const answeredByBroker = async (): Promise<Map<string, number>> => {
    const out = new Map<string, number>();
    for (const b of tt.brokers) {
      const r = await b.host.exec('curl', ['-s', '-m', '5', `http://127.0.0.1:${b.statusPort}/metrics`]);
      let sum = 0;
      for (const m of r.stdout.matchAll(
        new RegExp(`^nonstop_broker_jobs_total\\{gateway="${gw.id}",outcome="answered"\\} (\\d+)$`, 'gm'),
      ))
        sum += Number(m[1]);
      out.set(b.id, sum);
    }
    return out;
  };
  /** The broker that answered most of gw1's jobs since `before`. */
  const carrierSince = async (before: Map<string, number>): Promise<BrokerNode> => {
    const now = await answeredByBroker();
    const gain = (b: BrokerNode) => (now.get(b.id) ?? 0) - (before.get(b.id) ?? 0);
    const best = [...tt.brokers].sort((a, b) => gain(b) - gain(a))[0]!;
    if (gain(best) <= 0) throw new Error(`no broker answered ${gw.id}'s jobs`);
    return best;
  };
  let carrier: BrokerNode = b1;

  const targets: Target[] = [
    {
      system: 'direct',
      client: b1.host, // the core listens on the private segment only; b1 is on it
      spec: {
        url: tt.core.url,
        kind: 'execute',
        ca: tt.core.caFile,
        cert: client.cert,
        key: client.key,
        servername: 'core',
      },
      processes: () => ({ core: tt.core.process.pid }),
    },
    {
      system: 'peer',
      client: tt.inet,
      spec: { url: peer.url, kind: 'execute', ca: extra.publicCa.cert },
      processes: () => ({
        nginx: peer.nginx.pid,
        sshd: peer.sshd.pid,
        'ssh -R': peer.ssh.pid,
        core: tt.core.process.pid,
      }),
    },
    {
      system: 'nonstop',
      client: tt.inet,
      spec: { url: gw.httpsUrl, kind: 'public', ca: tt.publicCaFile },
      processes: () => ({
        gateway: gw.gateway.pid,
        sshd: gw.sshd.pid,
        broker: carrier.process.pid,
        redis: carrier.redis[gw.id]!.process.pid,
        core: tt.core.process.pid,
        guard: gw.guard.pid,
      }),
    },
  ];
  // JIT, pools and the core's database warm up before anything is measured; meanwhile, see
  // which broker carries gw1's queue (the gateway queues on one endpoint while it is up).
  const timing = { seconds, warmupSeconds: smoke ? 0.3 : 2, concurrency: 32 };
  const idleAll = new RssWatcher({
    gateway: gw.gateway.pid,
    ...Object.fromEntries(tt.brokers.map((b) => [b.id, b.process.pid])),
    core: tt.core.process.pid,
    guard: gw.guard.pid,
  }).stop();
  const answeredBefore = await answeredByBroker();
  for (const t of targets)
    await runLoadIn(t.client, {
      ...t.spec,
      ...timing,
      seconds: smoke ? 0.5 : 3,
      textBytes: 0,
      mode: 'closed',
    });
  carrier = await carrierSince(answeredBefore);
  progress(`warmed up; ${carrier.id} carries ${gw.id}'s queue`);
  const daemons = () => ({
    gateway: gw.gateway.pid,
    broker: carrier.process.pid,
    core: tt.core.process.pid,
    guard: gw.guard.pid,
  });
  const idleRss: Record<string, number> = {
    gateway: idleAll.gateway ?? 0,
    broker: idleAll[carrier.id] ?? 0,
    core: idleAll.core ?? 0,
    guard: idleAll.guard ?? 0,
  };

  let saturationRss: Record<string, number> = {};
  let guardAtSaturation: GuardCost['httpSaturation'];
  const rows = await measureRequestPath(targets, { ...timing, rounds }, progress, async (system, run) => {
    if (system !== 'nonstop') return run();
    const watcher = new RssWatcher(daemons());
    const guardBefore = sampleProc(gw.guard.pid);
    const r = await run();
    const guardAfter = sampleProc(gw.guard.pid);
    for (const [d, kib] of Object.entries(watcher.stop()))
      saturationRss[d] = Math.max(saturationRss[d] ?? 0, kib);
    const cpu = guardAfter.cpuSeconds - guardBefore.cpuSeconds;
    guardAtSaturation = {
      requests: r.requests + (guardAtSaturation?.requests ?? 0),
      seconds: r.seconds + (guardAtSaturation?.seconds ?? 0),
      cpuSeconds: Number((cpu + (guardAtSaturation?.cpuSeconds ?? 0)).toFixed(2)),
      rssKiB: Math.max(guardAfter.rssKiB, guardAtSaturation?.rssKiB ?? 0),
    };
    return r;
  });
  saturationRss = { ...saturationRss };
  const lightLoad = await measureLightLoad(targets, timing, LIGHT_RATE, progress);

  const sides = await startFloodTargets(tt.world);
  progress('flood targets up (nonstop guard, knockd)');
  const flood = await measureFlood(tt.inet, sides, smoke ? 5000 : 100000);
  progress(
    `flood: guard ${flood.guard.cpuSecondsPer10k} CPU s/10k packets, knockd ${flood.knockd.cpuSecondsPer10k}`,
  );
  const spaSides = await startSpaFloodTargets(tt.world);
  progress('SPA flood targets up (nonstop guard with and without its limits, fwknopd)');
  // More than the guard's burst (its packetsPerSecond) even in a smoke run, so that its limits show.
  const spaFlood = await measureSpaFlood(tt.inet, spaSides, smoke ? 20000 : 100000);
  progress(
    `SPA flood: guard ${spaFlood.guard.cpuSecondsPer10k} CPU s/10k packets (limits lifted: ` +
      `${spaFlood.guardUnlimited.cpuSecondsPer10k}), fwknopd ${spaFlood.fwknopd.cpuSecondsPer10k}`,
  );

  const recovery = await measureRecovery(
    {
      inet: tt.inet,
      gatewayUrl: gw.httpsUrl,
      gatewayCa: tt.publicCaFile,
      gatewayId: gw.id,
      brokerIds: [carrier.id, ...tt.brokers.filter((b) => b !== carrier).map((b) => b.id)],
      carrier: async () => {
        const before = await answeredByBroker();
        await new Promise((r) => setTimeout(r, 1000));
        return (await carrierSince(before)).id;
      },
      killBroker: (id) => tt.killBroker(id),
      startBroker: (id) => Promise.resolve(void tt.startBroker(id)),
      killSshd: (id) => tt.killSshd(id),
      startSshd: (id) => tt.startSshd(id),
      waitUntilServing: (ms) => tt.waitUntilServing(ms),
      brokerLog: (id) => tt.broker(id).process.jsonLines(),
    },
    progress,
  );

  const results: BenchResults = {
    name,
    date: new Date().toISOString(),
    smoke,
    command: `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { ...machine(), loadAverageBefore: loadBefore },
    secondsPerRow: seconds,
    rounds,
    totalSeconds: Math.round((Date.now() - started) / 1000),
    requestPath: rows,
    lightLoad,
    recovery,
    guard: {
      ...(guardAtSaturation === undefined ? {} : { httpSaturation: guardAtSaturation }),
      flood,
      spaFlood,
    },
    rss: { idle: idleRss, saturation: saturationRss },
  };
  mkdirSync(values.out, { recursive: true });
  writeFileSync(join(values.out, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(values.out, `${name}.md`), renderMarkdown(results));
  writeFileSync(join(values.out, `${name}.svg`), renderSvg(results));
  console.log(renderMarkdown(results));
  progress(`wrote ${join(values.out, name)}.{md,json,svg}`);
} finally {
  await tt.close();
}
