// Run inside a namespace (test/e2e/client-address.test.ts): a load balancer's side of PROXY
// protocol v1. For each request it opens a TCP connection to the gateway's 443, sends a PROXY
// header naming `clientIp` (unless `clientIp` is null), then TLS and one HTTP/1.1 GET. Prints one
// JSON line: each request's status, 0 where the gateway closed the connection without one.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

interface Spec {
  readonly address: string;
  readonly servername: string;
  readonly ca: string;
  readonly clientIp: string | null;
  readonly path: string;
  readonly count: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as Spec;
const ca = readFileSync(spec.ca);

function once(): Promise<number> {
  return new Promise((resolve) => {
    const raw = net.connect(443, spec.address, () => {
      if (spec.clientIp !== null) {
        const family = spec.clientIp.includes(':') ? 'TCP6' : 'TCP4';
        raw.write(`PROXY ${family} ${spec.clientIp} ${spec.address} 40000 443\r\n`);
      }
      const secure = tls.connect({
        socket: raw,
        servername: spec.servername,
        ca,
        ALPNProtocols: ['http/1.1'],
      });
      let head = '';
      secure.on('secureConnect', () =>
        secure.write(`GET ${spec.path} HTTP/1.1\r\nhost: ${spec.servername}\r\nconnection: close\r\n\r\n`),
      );
      secure.on('data', (chunk: Buffer) => {
        head += chunk.toString('latin1');
        const status = /^HTTP\/1\.1 (\d{3}) /.exec(head);
        if (status !== null) {
          resolve(Number(status[1]));
          secure.destroy();
        }
      });
      secure.on('error', () => resolve(0));
      secure.on('close', () => resolve(0));
    });
    raw.on('error', () => resolve(0));
    raw.setTimeout(10_000, () => {
      raw.destroy();
      resolve(0);
    });
  });
}

const statuses: number[] = [];
for (let i = 0; i < spec.count; i++) statuses.push(await once());
process.stdout.write(`${JSON.stringify({ statuses })}\n`);
