// A client that holds one keep-alive HTTPS connection to a gateway while its certificate is
// renewed, run inside a world host (inet):
//   node keepalive-tls-peer.js '{"address":…,"name":…,"ca":file,"path":…,"timeoutMs":…}'
// It sends `path` over one connection every 500 ms (the gateway closes idle ones after 5 s) and
// makes a fresh handshake each time, until a fresh one shows another certificate (verified with
// `ca` for `name`); then sends once more on the old connection. Prints one JSON line:
// { first, renewed, last, requests } (serials, local ports, statuses) or { error }.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { connect, type TLSSocket } from 'node:tls';

interface Spec {
  readonly address: string;
  readonly name: string;
  readonly ca: string;
  readonly path: string;
  readonly timeoutMs: number;
}

interface Seen {
  readonly status: number;
  readonly localPort: number;
  readonly serial: string;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as Spec;
const ca = readFileSync(spec.ca);
const agent = new Agent({ keepAlive: true, maxSockets: 1, ca });

function get(): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: spec.address,
        port: 443,
        path: spec.path,
        agent,
        servername: spec.name,
        headers: { host: spec.name },
        timeout: 5000,
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        const seen = {
          status: res.statusCode ?? 0,
          localPort: socket.localPort ?? 0,
          serial: socket.getPeerCertificate().serialNumber,
        };
        res.resume();
        res.on('end', () => resolve(seen));
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** The serial of the certificate a new handshake gets (it must verify for the name). */
function freshSerial(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: spec.address, port: 443, servername: spec.name, ca }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.end();
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timed out')));
    socket.on('error', reject);
  });
}

async function main(): Promise<unknown> {
  const end = Date.now() + spec.timeoutMs;
  const first = await get();
  let requests = 1;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 500));
    const seen = await get();
    requests += 1;
    if (seen.localPort !== first.localPort || seen.serial !== first.serial)
      return { error: 'the keep-alive connection changed', first, seen, requests };
    const serial = await freshSerial();
    if (serial !== first.serial) {
      const last = await get();
      return { first, renewed: serial, last, requests: requests + 1 };
    }
  }
  return { error: `no new certificate within ${spec.timeoutMs} ms`, first, requests };
}

main().then(
  (result) => {
    agent.destroy();
    process.stdout.write(`${JSON.stringify(result)}\n`);
  },
  (err: unknown) => {
    agent.destroy();
    process.stdout.write(`${JSON.stringify({ error: String(err) })}\n`);
    process.exitCode = 1;
  },
);
