// Run inside a namespace (test/e2e/client-address.test.ts): a load balancer's side of PROXY
// protocol (v1 text or v2 binary). For each request it opens a TCP connection to the gateway's
// 443 (its IPv6 address for an IPv6 client: a header's two addresses share a family), sends a
// PROXY header naming `clientIp` (unless `clientIp` is null), then TLS and one HTTP/1.1 GET.
// Prints one JSON line: each request's status, 0 where the gateway closed the connection
// without one, and the connection errors seen.
import { readFileSync } from 'node:fs';
import net, { isIPv6 } from 'node:net';
import tls from 'node:tls';
import { proxyV1, proxyV2 } from '../helpers/proxy-protocol.js';

interface Spec {
  readonly address: string;
  readonly address6: string;
  readonly version: 1 | 2;
  readonly servername: string;
  readonly ca: string;
  readonly clientIp: string | null;
  readonly path: string;
  readonly count: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as Spec;
const ca = readFileSync(spec.ca);
const errors: string[] = [];

function once(): Promise<number> {
  return new Promise((resolve) => {
    const destination = spec.clientIp !== null && isIPv6(spec.clientIp) ? spec.address6 : spec.address;
    const raw = net.connect(443, destination, () => {
      if (spec.clientIp !== null) {
        const hop = { source: spec.clientIp, sourcePort: 40000, destination, destinationPort: 443 };
        raw.write(spec.version === 1 ? proxyV1(hop) : proxyV2(hop));
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
      secure.on('error', (err: Error) => {
        errors.push(err.message);
        resolve(0);
      });
      secure.on('close', () => resolve(0));
    });
    raw.on('error', (err: Error) => {
      errors.push(`tcp: ${err.message}`);
      resolve(0);
    });
    raw.setTimeout(10_000, () => {
      raw.destroy();
      resolve(0);
    });
  });
}

const statuses: number[] = [];
for (let i = 0; i < spec.count; i++) statuses.push(await once());
process.stdout.write(`${JSON.stringify({ statuses, errors })}\n`);
