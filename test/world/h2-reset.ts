// Run inside a namespace (test/e2e/http2.test.ts): an HTTP/2 client that opens streams and
// resets each at once (CVE-2023-44487) until the server ends its session. Prints one JSON line:
// the GOAWAY code it got (or null), how many streams it opened, and whether the session closed.
import http2, { constants } from 'node:http2';
import { readFileSync } from 'node:fs';

interface Spec {
  readonly url: string;
  readonly ca: string;
  readonly servername: string;
  readonly count: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as Spec;
const session = http2.connect(spec.url, { ca: readFileSync(spec.ca), servername: spec.servername });
let goaway: number | null = null;
let opened = 0;
session.on('error', () => {});
session.on('goaway', (code: number) => (goaway = code));
const done = (closed: boolean) => {
  process.stdout.write(`${JSON.stringify({ goaway, opened, closed })}\n`);
  process.exit(0);
};
session.on('close', () => done(true));
setTimeout(() => done(false), 10_000).unref();
session.once('remoteSettings', () => {
  for (let i = 0; i < spec.count && !session.closed && !session.destroyed; i++) {
    try {
      const stream = session.request({ ':path': '/notes?limit=1' });
      stream.on('error', () => {});
      stream.close(constants.NGHTTP2_CANCEL);
      opened++;
    } catch {
      break;
    }
  }
});
