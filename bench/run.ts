// `npm run bench`: nonstop and its peers side by side, in one run, in the namespace world.
//   node dist/bench/run.js [--smoke] [--seconds N] [--out DIR] [--name NAME]
// Writes DIR/NAME.md, DIR/NAME.json and DIR/NAME.svg (default bench/results/latest.*).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../world/world.js';
import { startBaseWorld } from './base-world.js';
import { measureFlood, startFloodTargets } from './guard-cost.js';
import { startPeer } from './peer.js';
import { measureRequestPath, type Target } from './request-rows.js';
import { machine, renderMarkdown, renderSvg, type BenchResults } from './report.js';

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    seconds: { type: 'string' },
    out: { type: 'string', default: join(packageRoot(), 'bench', 'results') },
    name: { type: 'string' },
  },
});
const smoke = values.smoke;
const seconds = Number(values.seconds ?? (smoke ? 2 : 10));
const name = values.name ?? (smoke ? 'smoke' : 'latest');
const started = Date.now();
const progress = (line: string) =>
  console.error(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);

const uptimeBefore = machine().loadAverage;
const base = await startBaseWorld();
try {
  progress('world up');
  const gw = await base.world.addHost('peer-gw', { public: 1 });
  const peer = await startPeer({
    world: base.world,
    gateway: gw,
    broker: base.broker,
    core: { ip: base.core.ip, port: base.core.port, serverName: 'core' },
    internal: { ca: base.pki.ca.cert, cert: base.pki.brokers.b1!.cert, key: base.pki.brokers.b1!.key },
    publicTls: base.pki.gateways.peer!,
  });
  progress('peer up (nginx, sshd, ssh -R)');
  const targets: Target[] = [
    {
      system: 'direct',
      client: base.broker,
      spec: {
        url: `https://${base.core.ip}:${base.core.port}`,
        kind: 'execute',
        ca: base.pki.ca.cert,
        cert: base.pki.brokers.b1!.cert,
        key: base.pki.brokers.b1!.key,
        servername: 'core',
      },
    },
    {
      system: 'peer',
      client: base.inet,
      spec: { url: peer.url, kind: 'execute', ca: base.pki.publicCa.cert },
    },
  ];
  const sides = await startFloodTargets(base.world);
  progress('flood targets up (nonstop guard, knockd)');
  const flood = await measureFlood(base.inet, sides, smoke ? 5000 : 50000);
  progress(
    `flood: guard ${flood.guard.cpuSecondsPer10k} CPU s/10k packets, knockd ${flood.knockd.cpuSecondsPer10k}`,
  );
  const rows = await measureRequestPath(
    targets,
    { seconds, warmupSeconds: smoke ? 1 : 2, concurrency: 64 },
    progress,
  );
  const results: BenchResults = {
    name,
    date: new Date().toISOString(),
    smoke,
    command: `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { ...machine(), loadAverageBefore: uptimeBefore },
    secondsPerRow: seconds,
    requestPath: rows,
    guard: { flood },
  };
  mkdirSync(values.out, { recursive: true });
  writeFileSync(join(values.out, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(values.out, `${name}.md`), renderMarkdown(results));
  writeFileSync(join(values.out, `${name}.svg`), renderSvg(results));
  console.log(renderMarkdown(results));
} finally {
  await base.close();
}
