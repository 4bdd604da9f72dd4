// `nonstop demo`: the whole system in network namespaces on this machine (root), sample requests
// traced hop by hop, an admin knock, then up until interrupted; `--smoke` checks it all and exits.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ThreeTier, type Topology } from '../world/three-tier.js';
import { packageRoot } from '../world/world.js';
import { parseCommandArgs, type Command } from './command.js';
import { DEMO_SAMPLES, traceRequest } from './demo-trace.js';
import { ensureDebianPackages } from './demo-packages.js';

export const demoCommand: Command = {
  name: 'demo',
  help: `Usage: nonstop demo [--smoke] [--topology FILE]

As root, builds the whole system on this machine in network namespaces: an internet host
(inet), two gateways (nftables knock guard, sshd, gateway on 80/443), two brokers (their own
Redis; they knock, open SSH tunnels into both gateways and listen on nothing) and a core
(embedded database) on a private segment. Every key, certificate, knock secret and config is
generated. Missing Debian packages are installed first.

Then it sends sample requests through both gateways and shows each one's path, knocks on a
gateway as an admin, and stays up until Ctrl-C, when it removes everything it made.

Options:
  --smoke           check every step, tear down, exit 0 only when all of it worked
  --topology FILE   where to write the world's topology (default: in the world's folder)
  -h, --help        show this help`,
  async run(argv) {
    const { values } = parseCommandArgs(argv, {
      smoke: { type: 'boolean', default: false },
      topology: { type: 'string' },
    });
    if (values.help) {
      console.log(this.help);
      return 0;
    }
    if (process.getuid?.() !== 0) {
      console.error('nonstop demo: needs root (network namespaces, nftables, sshd); try: sudo npm start');
      return 1;
    }
    const interrupted = trapSignals();
    const started = Date.now();
    const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s`;
    const step = (line: string) => console.log(`[${elapsed()}] ${line}`);
    ensureDebianPackages(step);
    step('building the world in network namespaces');
    const tt = await ThreeTier.start({ progress: step });
    let code = 130; // interrupted during the bring-up: straight to the teardown
    try {
      if (!interrupted.signalled) code = await present(tt, { ...values, started, step, interrupted });
    } finally {
      // Whatever happened, nothing of the world may stay; if something does, the run failed.
      if (!(await tearDown(tt, step))) code = 1;
    }
    return code;
  },
};

interface PresentOptions {
  readonly smoke: boolean;
  readonly topology?: string;
  readonly started: number;
  readonly step: (line: string) => void;
  readonly interrupted: { readonly signalled: boolean; readonly promise: Promise<void> };
}

/** Topology, samples, admin knock; then the smoke verdict, or up until interrupted. */
async function present(tt: ThreeTier, options: PresentOptions): Promise<number> {
  const { step, interrupted } = options;
  const checks: { what: string; ok: boolean }[] = [];
  const check = (what: string, ok: boolean) => {
    checks.push({ what, ok });
    return ok;
  };
  const bringUp = Date.now() - options.started;
  step(`every broker has a tunnel into every gateway; first requests served (bring-up ${bringUp} ms)`);
  const topologyFile = options.topology ?? join(tt.dir, 'topology.json');
  writeFileSync(topologyFile, `${JSON.stringify(withCommands(tt.topology(), tt), null, 2)}\n`);
  step(`topology written to ${topologyFile}`);
  console.log('');
  printHosts(tt);
  console.log('');
  check('sample requests', await runSamples(tt, check));
  console.log('');
  check('admin knock', await adminKnock(tt, step));
  if (options.smoke) {
    const failed = checks.filter((c) => !c.ok);
    console.log(
      failed.length === 0
        ? `\nsmoke: all ${checks.length} checks passed (bring-up ${bringUp} ms)`
        : `\nsmoke: FAILED: ${failed.map((c) => c.what).join('; ')}`,
    );
    return failed.length === 0 ? 0 : 1;
  }
  printTryIt(tt, topologyFile);
  if (!interrupted.signalled) await interrupted.promise;
  return 0;
}

/** Stops every process of the world and deletes it; true when no namespace of it is left. */
async function tearDown(tt: ThreeTier, step: (line: string) => void): Promise<boolean> {
  step('tearing down: stopping every process, deleting the namespaces and files');
  const prefix = tt.world.prefix;
  await tt.close();
  const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith(prefix));
  step(left.length === 0 ? 'nothing left behind' : `still present: ${left.join(', ')}`);
  return left.length === 0;
}

/** The first SIGINT/SIGTERM/SIGHUP ends the demo gracefully; a second one kills the world at once. */
function trapSignals(): { signalled: boolean; promise: Promise<void> } {
  const state = { signalled: false, promise: Promise.resolve() };
  state.promise = new Promise((resolve) => {
    let count = 0;
    const handler = () => {
      count++;
      state.signalled = true;
      if (count === 1) {
        console.log('\ninterrupted; tearing down (interrupt again to kill at once)');
        resolve();
      } else {
        process.exit(130); // the world's exit handler removes the namespaces synchronously
      }
    };
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, handler);
  });
  return state;
}

function printHosts(tt: ThreeTier): void {
  const row = (name: string, role: string, address: string, what: string) =>
    console.log(`  ${name.padEnd(6)} ${role.padEnd(8)} ${address.padEnd(14)} ${what}`);
  row('inet', 'internet', tt.inet.ip4, 'sends the requests below');
  for (const g of tt.gateways)
    row(g.id, 'gateway', g.ip, ':80 :443 public; :22 filtered until a knock; tunnels from the brokers');
  for (const b of tt.brokers)
    row(
      b.id,
      'broker',
      b.host.ip4,
      `listens on nothing; Redis on its loopback; core via ${b.host.addresses.private.v4[0]}`,
    );
  row(
    'core',
    'core',
    tt.core.ip,
    `:${tt.core.port} mutual TLS, private segment only; database in ${tt.core.dataDir}`,
  );
}

async function runSamples(tt: ThreeTier, check: (what: string, ok: boolean) => boolean): Promise<boolean> {
  let noteId = '';
  let ok = true;
  for (const sample of DEMO_SAMPLES) {
    const path = sample.path.replace(':id', noteId);
    const answer = await tt.request(sample.gateway, {
      method: sample.method,
      path,
      body: sample.body,
      https: sample.https,
      ...(sample.headers === undefined ? {} : { headers: sample.headers }),
    });
    if (sample.method === 'POST' && answer.status === 201) {
      const id = (JSON.parse(answer.body) as { id?: unknown }).id;
      noteId = typeof id === 'string' ? id : '';
    }
    const trace = await traceRequest(tt, sample.gateway, answer);
    const good =
      check(`${sample.label}: status ${answer.status}`, answer.status === sample.expect) &&
      check(`${sample.label}: stopped at ${trace.stoppedAt}`, trace.stoppedAt === sample.stopsAt);
    ok &&= good;
    const scheme = sample.https ? 'https' : 'http';
    console.log(
      `${good ? '✔' : '✘'} ${sample.label}: inet → ${sample.gateway} (${scheme}) ${sample.method} ${path}${sample.body === undefined ? '' : ` ${sample.body}`}`,
    );
    const flat = answer.body.replace(/\s+/g, ' ').trim();
    const shown = flat.length > 120 ? `${flat.slice(0, 117)}…` : flat;
    console.log(
      `    → ${answer.status}${good ? '' : ` (expected ${sample.expect} from the ${sample.stopsAt})`} ${shown}`,
    );
    for (const line of trace.lines) console.log(`      ${line}`);
  }
  return ok;
}

/** SSH on a gateway is filtered for inet until inet knocks with the admin profile. */
async function adminKnock(tt: ThreeTier, step: (line: string) => void): Promise<boolean> {
  const g = tt.gateways[0]!;
  const scan = async () =>
    (
      await tt.inet.exec('ssh-keyscan', ['-T', '2', '-t', 'ed25519', '-p', String(g.sshPort), g.ip])
    ).stdout.trim();
  const expected = g.hostKey.publicKey.split(' ').slice(0, 2).join(' ');
  const before = await scan();
  step(`inet → ${g.id}:22 before knocking: ${before === '' ? 'no answer (filtered)' : 'ANSWERED'}`);
  const knock = await tt.inet.runNode(CLI, [
    'knock',
    '--profile',
    `admin-${g.id}`,
    '--profiles',
    tt.adminKnockProfiles,
  ]);
  step(`inet knocks as admin: nonstop knock --profile admin-${g.id} → exit ${knock.code}`);
  const after = await scan();
  const opened = after.includes(expected);
  step(
    `inet → ${g.id}:22 after knocking: ${opened ? `sshd answers with ${g.id}'s pinned host key` : `no answer: ${knock.stderr.trim()}`}`,
  );
  return before === '' && knock.code === 0 && opened;
}

function withCommands(topology: Topology, tt: ThreeTier): Topology & { commands: Record<string, string> } {
  const g = tt.gateways[0]!;
  const inet = `ip netns exec ${tt.inet.ns}`;
  return {
    ...topology,
    commands: {
      request: `${inet} curl -s -H 'content-type: application/json' -d '{"title":"hello"}' ${g.httpUrl}/notes`,
      requestHttps: `${inet} curl -s --cacert ${tt.publicCaFile} ${g.httpsUrl}/notes?limit=5`,
      adminKnock: `${inet} ${process.execPath} ${join(packageRoot(), CLI)} knock --profile admin-${g.id} --profiles ${tt.adminKnockProfiles}`,
      shellIn: `ip netns exec <namespace> bash`,
    },
  };
}

function printTryIt(tt: ThreeTier, topologyFile: string): void {
  const commands = withCommands(tt.topology(), tt).commands;
  console.log(`
The world is up. From the internet host:
  send a request:   ${commands.request}
  knock as admin:   ${commands.adminKnock}
                    then: ip netns exec ${tt.inet.ns} ssh-keyscan -p 22 ${tt.gateways[0]!.ip}
Every host, namespace, address and service: ${topologyFile}

Press Ctrl-C to stop; everything is removed.`);
}
