// A small helper the tests run inside a host's namespace (`host.runNode('dist/test/world/agent.js',
// [...])`), since the test process itself stays in the machine's namespace. Subcommands:
//   probe HOST PORT [--bind A] [--timeout MS]      prints open | closed | filtered
//   hold HOST PORT [--bind A]                        connects, prints "connected <banner>", then on
//                                                    "send\n" on stdin writes an SSH banner and
//                                                    prints "alive" or "dead" (reply within 3 s?)
//   http PORT...                                     HTTP listeners; prints "ready"
//   flood HOST --count N --seconds S [--knock-ports A-B] [--hot-ports P,Q] [--src 198.18.128.0/17]
//                                                    raw IPv4 SYNs from random spoofed sources: a
//                                                    third to random ports, a third to the knock
//                                                    range, a third to the hot ports (first steps)
//   udp HOST PORT --payload HEX [--bind A] [--listen MS]
//                                                    one datagram (an SPA packet, a replay of one);
//                                                    with --listen, waits MS for any answer and
//                                                    prints it: none | message | refused (ICMP)
//   udp-flood HOST PORT --count N --seconds S [--src 198.18.128.0/17] [--size B]
//                                                    raw IPv4 UDP from random spoofed sources, each
//                                                    a random base64 text of B bytes (what an SPA
//                                                    packet looks like, so each costs an HMAC)
import { randomBytes, randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { createServer } from 'node:http';
import { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import raw from 'raw-socket';

const [command, ...rest] = process.argv.slice(2);
const { values, positionals } = parseArgs({
  args: rest,
  allowPositionals: true,
  options: {
    bind: { type: 'string' },
    timeout: { type: 'string', default: '1500' },
    count: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    ports: { type: 'string', default: '1-65535' },
    'knock-ports': { type: 'string' },
    'hot-ports': { type: 'string' },
    src: { type: 'string', default: '198.18.128.0/17' },
    payload: { type: 'string' },
    size: { type: 'string', default: '180' },
    listen: { type: 'string' },
  },
});

function connect(host: string, port: number): Socket {
  return new Socket().connect({
    host,
    port,
    ...(values.bind !== undefined ? { localAddress: values.bind } : {}),
  });
}

function probe(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(host, port);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('filtered');
    }, Number(values.timeout));
    socket.on('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('open');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code === 'ECONNREFUSED' ? 'closed' : `error ${err.code}`);
    });
  });
}

function hold(host: string, port: number): void {
  const socket = connect(host, port);
  let stage: 'banner' | 'waiting' | 'reply' = 'banner';
  socket.setTimeout(Number(values.timeout));
  socket.on('timeout', () => {
    if (stage === 'banner') {
      console.log('filtered');
      process.exit(1);
    }
  });
  socket.on('error', (err) => {
    console.log(`error ${err.message}`);
    process.exit(1);
  });
  socket.on('data', (data) => {
    if (stage === 'banner') {
      stage = 'waiting';
      socket.setTimeout(0);
      console.log(`connected ${data.toString('latin1').split('\r\n')[0]}`);
    } else if (stage === 'reply') {
      console.log('alive');
      process.exit(0);
    }
  });
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line !== 'send') return;
    stage = 'reply';
    socket.write('SSH-2.0-nonstop_probe\r\n');
    setTimeout(() => {
      console.log('dead');
      process.exit(1);
    }, 3000);
  });
}

function http(ports: number[]): void {
  let ready = 0;
  for (const port of ports) {
    createServer((_req, res) => res.end('ok\n')).listen(port, '::', () => {
      if (++ready === ports.length) console.log('ready');
    });
  }
}

function range(text: string): [number, number] {
  const [a, b] = text.split('-').map(Number);
  return [a!, b ?? a!];
}

/**
 * Sends spoofed IPv4 packets of one protocol until --count or --seconds: each from a random
 * source in --src, its IP header written here (the kernel fills in the checksum), the rest by
 * `fill` (the packet's bytes after the 20-byte IP header). Prints what went out.
 */
async function spoofedFlood(
  host: string,
  protocol: 'tcp' | 'udp',
  bytes: number,
  fill: (packet: Buffer, n: number) => void,
): Promise<void> {
  const count = Number(values.count);
  const deadline = Date.now() + Number(values.seconds) * 1000;
  const [net, bits] = values.src.split('/');
  const base = net!.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const hostBits = 32 - Number(bits);
  const socket = raw.createSocket({ protocol: protocol === 'tcp' ? raw.Protocol.TCP : raw.Protocol.UDP });
  socket.setOption(raw.SocketLevel.IPPROTO_IP, raw.SocketOption.IP_HDRINCL, 1);
  const dst = host.split('.').map(Number);
  const packet = Buffer.alloc(bytes);
  let sent = 0;
  let errors = 0;
  const started = Date.now();
  while (sent + errors < count && Date.now() < deadline) {
    packet.fill(0);
    packet[0] = 0x45;
    packet.writeUInt16BE(bytes, 2);
    packet[8] = 64;
    packet[9] = protocol === 'tcp' ? 6 : 17;
    packet.writeUInt32BE((base + randomInt(1, 2 ** hostBits - 1)) >>> 0, 12);
    dst.forEach((o, i) => (packet[16 + i] = o));
    fill(packet, sent);
    const ok = await new Promise<boolean>((resolve) =>
      socket.send(packet, 0, bytes, host, null, (err) => resolve(err === null)),
    );
    if (ok) sent += 1;
    else errors += 1;
  }
  socket.close();
  console.log(JSON.stringify({ sent, errors, ms: Date.now() - started }));
}

/** TCP SYNs: a third to random ports, a third to the knock range, a third to the hot ports. */
function flood(host: string): Promise<void> {
  const [pMin, pMax] = range(values.ports);
  const knock = values['knock-ports'] !== undefined ? range(values['knock-ports']) : undefined;
  const hot = (values['hot-ports'] ?? '')
    .split(',')
    .filter((p) => p !== '')
    .map(Number);
  return spoofedFlood(host, 'tcp', 40, (packet, n) => {
    const kind = n % 3;
    const dport =
      kind === 1 && knock !== undefined
        ? randomInt(knock[0], knock[1] + 1)
        : kind === 2 && hot.length > 0
          ? hot[randomInt(0, hot.length)]!
          : randomInt(pMin, pMax + 1);
    packet.writeUInt16BE(randomInt(1024, 65536), 20);
    packet.writeUInt16BE(dport, 22);
    packet.writeUInt32BE(randomInt(0, 2 ** 32 - 1), 24);
    packet[32] = 0x50;
    packet[33] = 0x02; // SYN
    packet.writeUInt16BE(64240, 34);
    packet.writeUInt16BE(tcpChecksum(packet), 36);
  });
}

async function udp(host: string, port: number): Promise<void> {
  const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
  if (values.bind !== undefined) {
    const address = values.bind;
    await new Promise<void>((resolve) => socket.bind({ address, port: 0 }, resolve));
  }
  const payload = Buffer.from(values.payload ?? '', 'hex');
  // Connected, so that an ICMP port unreachable comes back as ECONNREFUSED.
  await new Promise<void>((resolve) => socket.connect(port, host, resolve));
  const answer = new Promise<string>((resolve) => {
    socket.once('message', () => resolve('message'));
    socket.on('error', (err: NodeJS.ErrnoException) =>
      resolve(err.code === 'ECONNREFUSED' ? 'refused' : String(err.code)),
    );
    setTimeout(() => resolve('none'), Number(values.listen ?? 0)).unref();
  });
  await new Promise<void>((resolve, reject) =>
    socket.send(payload, (err) => (err ? reject(err) : resolve())),
  );
  const heard = values.listen === undefined ? undefined : await answer;
  socket.close();
  console.log(JSON.stringify({ sent: payload.length, ...(heard === undefined ? {} : { answer: heard }) }));
}

/** UDP datagrams with no UDP checksum (0: none, allowed over IPv4), each random base64 text. */
function udpFlood(host: string, port: number): Promise<void> {
  const size = Number(values.size);
  return spoofedFlood(host, 'udp', 28 + size, (packet) => {
    packet.writeUInt16BE(randomInt(1024, 65536), 20);
    packet.writeUInt16BE(port, 22);
    packet.writeUInt16BE(8 + size, 24);
    packet.write(randomBytes(size).toString('base64').slice(0, size), 28, 'latin1');
  });
}

function tcpChecksum(p: Buffer): number {
  let sum = 0;
  for (let i = 12; i < 20; i += 2) sum += p.readUInt16BE(i);
  sum += 6 + 20;
  for (let i = 20; i < 40; i += 2) if (i !== 36) sum += p.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const host = positionals[0] ?? '';
const port = Number(positionals[1]);
switch (command) {
  case 'probe':
    console.log(await probe(host, port));
    break;
  case 'hold':
    hold(host, port);
    break;
  case 'http':
    http(positionals.map(Number));
    break;
  case 'flood':
    await flood(host);
    break;
  case 'udp':
    await udp(host, port);
    break;
  case 'udp-flood':
    await udpFlood(host, port);
    break;
  default:
    console.error(`agent: unknown command ${command}`);
    process.exitCode = 2;
}
