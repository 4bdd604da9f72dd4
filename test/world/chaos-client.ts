// The chaos suite's client, run inside the internet host: a steady stream of POST /notes, each
// with a unique marker as its title and as its Idempotency-Key. A request that gets no definite
// answer (no connection, a reset, 409 in flight, 429, 5xx) is retried with the same key,
// through the next gateway, until it gets one or its time is up. One JSON line per request when
// it ends; stops taking new requests when stdin closes, finishes the ones under way, then exits.
//
// argv[2]: { urls: string[], run: string, concurrency: number, attemptTimeoutMs: number,
//            giveUpMs: number }
import http from 'node:http';

interface Options {
  readonly urls: readonly string[];
  readonly run: string;
  readonly concurrency: number;
  readonly attemptTimeoutMs: number;
  readonly giveUpMs: number;
}

export interface ChaosResult {
  readonly marker: string;
  /** The last status: 201 acknowledged; another 4xx is a definite refusal; 0 or 5xx, no answer. */
  readonly status: number;
  readonly noteId?: string;
  readonly attempts: number;
  /** Status of each attempt (0: no HTTP answer). */
  readonly statuses: readonly number[];
  /** Each attempt not answered 201: its status, the error code of its body and its request id. */
  readonly failures?: readonly { status: number; code?: string; requestId?: string }[];
  readonly firstSentAt: number;
  readonly answeredAt: number;
  readonly replayed: boolean;
}

const DEFINITE = (status: number) =>
  status === 201 || (status >= 400 && status < 500 && ![409, 429].includes(status));

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency * 2 });
let stopping = false;
let next = 0;
let rotation = 0;
process.stdin.on('data', () => {});
process.stdin.on('end', () => (stopping = true));

function attempt(
  url: string,
  body: string,
  key: string,
): Promise<{ status: number; noteId?: string; replayed: boolean; code?: string; requestId?: string }> {
  return new Promise((resolve) => {
    const req = http.request(
      `${url}/notes`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        timeout: options.attemptTimeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let noteId: string | undefined;
          let code: string | undefined;
          try {
            const parsed = JSON.parse(text) as { id?: unknown; error?: { code?: unknown } };
            if (typeof parsed.id === 'string') noteId = parsed.id;
            if (typeof parsed.error?.code === 'string') code = parsed.error.code;
          } catch {
            // not JSON: an error page
          }
          const requestId = res.headers['x-request-id'];
          resolve({
            status: res.statusCode ?? 0,
            noteId,
            replayed: res.headers['x-nonstop-replayed'] === '1',
            ...(code === undefined ? {} : { code }),
            ...(typeof requestId === 'string' ? { requestId } : {}),
          });
        });
        res.on('error', () => resolve({ status: 0, replayed: false }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('attempt timed out')));
    req.on('error', () => resolve({ status: 0, replayed: false }));
    req.end(body);
  });
}

async function one(seq: number): Promise<ChaosResult> {
  const marker = `chaos-${options.run}-${seq}`;
  const body = JSON.stringify({ title: marker });
  const firstSentAt = Date.now();
  const statuses: number[] = [];
  const failures: { status: number; code?: string; requestId?: string }[] = [];
  let backoff = 50;
  for (;;) {
    const url = options.urls[rotation++ % options.urls.length]!;
    const r = await attempt(url, body, marker);
    statuses.push(r.status);
    if (r.status !== 201)
      failures.push({
        status: r.status,
        ...(r.code === undefined ? {} : { code: r.code }),
        ...(r.requestId === undefined ? {} : { requestId: r.requestId }),
      });
    if (DEFINITE(r.status) || Date.now() - firstSentAt > options.giveUpMs) {
      return {
        marker,
        status: r.status,
        ...(r.noteId === undefined ? {} : { noteId: r.noteId }),
        attempts: statuses.length,
        statuses,
        ...(failures.length === 0 ? {} : { failures }),
        firstSentAt,
        answeredAt: Date.now(),
        replayed: r.replayed,
      };
    }
    await new Promise((resolve) => setTimeout(resolve, backoff));
    backoff = Math.min(backoff * 2, 1000);
  }
}

async function worker(): Promise<void> {
  while (!stopping) console.log(JSON.stringify(await one(next++)));
}

await Promise.all(Array.from({ length: options.concurrency }, worker));
agent.destroy();
