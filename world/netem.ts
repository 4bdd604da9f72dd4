// WAN faults on a segment of the test world: delay, jitter, loss and reordering on chosen hosts'
// links, or a blackout (all of it lost), as `tc netem` would add them — and removed again.
//
// The kernel this runs on (and CI's) is built without `sch_netem` (CONFIG_NET_SCH_NETEM is not
// set; `tc qdisc add … netem` answers "Specified qdisc kind is unknown"), and no other qdisc can
// hold a packet back. So the impairment is a small forwarder spliced into the segment's switch:
// the host's switch port leaves the bridge, a fresh veth pair takes its place there, and a
// process in the switch namespace moves frames between the two with netem's model (a fixed delay
// each way plus uniform jitter, independent loss, and a share of packets sent at once, ahead of
// the delayed ones, which is netem's `reorder`). It uses packet sockets with virtio-net headers,
// so segmentation and checksum offloads pass through untouched. The hosts' own interfaces are
// not changed, nor is any interface outside this world's namespaces; removing the splice puts
// the port back on the bridge. The forwarder is a process of the world, and its veths live in
// the world's switch namespace: world.close() ends both even if remove() was never reached.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Host, type HostProcess, type World } from './world.js';

export interface Impairment {
  /** Added to each packet, each way (so a round trip across one impaired link takes twice it). */
  readonly delayMs: number;
  /** Each packet's delay is `delayMs` ± up to this, uniformly. */
  readonly jitterMs: number;
  /** Share of packets lost, each way, 0..1 (1: a blackout). */
  readonly loss: number;
  /** Share of packets sent without the delay, overtaking those before them, 0..1. */
  readonly reorder: number;
}

export const BLACKOUT: Impairment = { delayMs: 0, jitterMs: 0, loss: 1, reorder: 0 };

interface Splice {
  readonly host: Host;
  /** The host's port on the switch (the peer of its segment interface). */
  readonly port: string;
  /** The new veth pair in the switch: `bridgeSide` is on the bridge, `forwarderSide` is not. */
  readonly bridgeSide: string;
  readonly forwarderSide: string;
}

/** Counters the forwarder prints when it stops: what the impairment did. */
export interface ImpairmentCounts {
  readonly forwarded: number;
  readonly dropped: number;
  readonly reordered: number;
}

let spliceCount = 0;

/** Impairs the links of `hosts` on `segment` until `remove()`. One at a time per host. */
export class WanFault {
  #proc: HostProcess | undefined;
  #splices: Splice[] = [];
  #removed = false;

  private constructor(
    private readonly switchHost: Host,
    readonly impairment: Impairment,
  ) {}

  static async apply(
    world: World,
    segment: 'public' | 'private',
    hosts: readonly Host[],
    impairment: Impairment,
  ): Promise<WanFault> {
    checkImpairment(impairment);
    if (hosts.length === 0) throw new Error('WanFault: no hosts to impair');
    const switchNs = `${world.prefix}-sw-${segment}`;
    const switchHost = new Host(world, `sw-${segment}`, switchNs);
    const fault = new WanFault(switchHost, impairment);
    try {
      await fault.#splice(world, segment, hosts);
    } catch (err) {
      await fault.remove();
      throw err;
    }
    return fault;
  }

  async #splice(world: World, segment: 'public' | 'private', hosts: readonly Host[]): Promise<void> {
    const dev = segment === 'public' ? 'pub0' : 'priv0';
    const sw = this.switchHost;
    const switchLinks = (await sw.check('ip', ['-o', 'link', 'show'])).split('\n');
    for (const host of hosts) {
      if (!host.ns.startsWith(`${world.prefix}-`))
        throw new Error(`WanFault: ${host.name} is not of this world`);
      // "5: pub0@if6: …": the peer's index in the switch namespace.
      const own = await host.check('ip', ['-o', 'link', 'show', 'dev', dev]);
      const peerIndex = /^\d+: [^@:]+@if(\d+):/.exec(own)?.[1];
      const port = switchLinks
        .map((l) => /^(\d+): ([^@:]+)@/.exec(l))
        .find((m) => m !== null && m[1] === peerIndex)?.[2];
      if (peerIndex === undefined || port === undefined)
        throw new Error(`WanFault: no switch port for ${host.name}'s ${dev} (${own.trim()})`);
      const n = ++spliceCount;
      const splice: Splice = { host, port, bridgeSide: `wan${n}a`, forwarderSide: `wan${n}b` };
      await sw.check('ip', [
        'link',
        'add',
        splice.bridgeSide,
        'type',
        'veth',
        'peer',
        'name',
        splice.forwarderSide,
      ]);
      this.#splices.push(splice);
      for (const link of [splice.bridgeSide, splice.forwarderSide]) {
        await sw.check('sysctl', ['-qw', `net.ipv6.conf.${link}.disable_ipv6=1`]);
        await sw.check('ip', ['link', 'set', link, 'up']);
      }
    }
    const script = join(world.dir, 'wan-forwarder.py');
    writeFileSync(script, FORWARDER);
    const pairs = this.#splices.map((s) => [s.port, s.forwarderSide]);
    this.#proc = sw.spawn('python3', [script, JSON.stringify({ pairs, ...this.impairment })]);
    await this.#proc.waitForLine((l) => l === 'ready', 10_000);
    // Now the frames take the forwarder's way: off the bridge, and its side on it.
    for (const s of this.#splices) {
      await sw.check('ip', ['link', 'set', s.port, 'nomaster']);
      await sw.check('ip', ['link', 'set', s.bridgeSide, 'master', 'br0']);
    }
  }

  /** Puts every port back on the bridge and stops the forwarder; safe to call twice. */
  async remove(): Promise<ImpairmentCounts | undefined> {
    if (this.#removed) return undefined;
    this.#removed = true;
    const sw = this.switchHost;
    const errors: string[] = [];
    // The forwarder first: its counts, and no sends on links about to go.
    let counts: ImpairmentCounts | undefined;
    if (this.#proc !== undefined) {
      await this.#proc.stop(2000);
      const last = this.#proc.lines.findLast((l) => l.startsWith('{'));
      if (last !== undefined) counts = JSON.parse(last) as ImpairmentCounts;
    }
    for (const s of this.#splices) {
      const r = await sw.exec('ip', ['link', 'set', s.port, 'master', 'br0']);
      if (r.code !== 0) errors.push(`${s.port} back on the bridge: ${r.stderr.trim()}`);
      // Deleting one end deletes the pair.
      await sw.exec('ip', ['link', 'del', s.bridgeSide]);
    }
    if (errors.length > 0) throw new Error(`WanFault: ${errors.join('; ')}`);
    return counts;
  }
}

function checkImpairment(i: Impairment): void {
  const ok =
    Number.isFinite(i.delayMs) &&
    i.delayMs >= 0 &&
    Number.isFinite(i.jitterMs) &&
    i.jitterMs >= 0 &&
    i.jitterMs <= i.delayMs &&
    i.loss >= 0 &&
    i.loss <= 1 &&
    i.reorder >= 0 &&
    i.reorder <= 1;
  if (!ok)
    throw new Error(
      `WanFault: an impairment needs delayMs >= jitterMs >= 0 and loss, reorder in 0..1; got ${JSON.stringify(i)}`,
    );
}

// Two packet sockets per pair, one on each side; a frame read on one is sent on the other when
// its time comes. PACKET_VNET_HDR keeps GSO frames and pending checksums as the kernel had them.
const FORWARDER = String.raw`
import heapq, json, random, select, signal, socket, sys, time

cfg = json.loads(sys.argv[1])
SOL_PACKET, PACKET_VNET_HDR, PACKET_OUTGOING, ETH_P_ALL = 263, 15, 4, 3
delay, jitter = cfg["delayMs"] / 1000.0, cfg["jitterMs"] / 1000.0
loss, reorder = cfg["loss"], cfg["reorder"]
counts = {"forwarded": 0, "dropped": 0, "reordered": 0}

def open_socket(dev):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((dev, ETH_P_ALL))
    s.setblocking(False)
    return s

peer = {}
for a, b in cfg["pairs"]:
    sa, sb = open_socket(a), open_socket(b)
    peer[sa], peer[sb] = sb, sa
queue, seq = [], 0
stopping = False

def stop(*_):
    global stopping
    stopping = True

signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
while not stopping:
    now = time.monotonic()
    while queue and queue[0][0] <= now:
        _, _, out, frame = heapq.heappop(queue)
        try:
            out.send(frame)
            counts["forwarded"] += 1
        except OSError:
            counts["dropped"] += 1
    timeout = max(0.0, queue[0][0] - now) if queue else 0.5
    try:
        ready, _, _ = select.select(list(peer), [], [], timeout)
    except InterruptedError:
        continue
    for s in ready:
        while True:
            try:
                frame, addr = s.recvfrom(262144)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                counts["dropped"] += 1
                break
            if addr[2] == PACKET_OUTGOING:
                continue
            if random.random() < loss:
                counts["dropped"] += 1
                continue
            if reorder > 0 and random.random() < reorder:
                wait = 0.0
                counts["reordered"] += 1
            else:
                wait = delay + random.uniform(-jitter, jitter)
            seq += 1
            heapq.heappush(queue, (time.monotonic() + wait, seq, peer[s], frame))
print(json.dumps(counts), flush=True)
`;
