// The one load generator every row of `npm run bench` uses, run inside the client's host:
//   node dist/bench/load.js '<LoadSpec as JSON>'   → one JSON line (LoadResult) on stdout
// It speaks HTTPS with keep-alive, with a client certificate when the target wants one (the core
// does), so that the same client drives direct, peer and nonstop. Two modes:
// - closed: `concurrency` clients each send their next request when the last is answered
//   (throughput at saturation);
// - open: requests are sent on a fixed schedule (`rate` per second) whatever the answers do, and
//   each latency runs from the moment the request was due, not when it got a socket, so a stall
//   shows up in the percentiles instead of slowing the sender (no coordinated omission).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';

export interface LoadSpec {
  /** https://HOST[:PORT] */
  readonly url: string;
  /** `public`: POST /notes as a browser would; `execute`: the core's POST /v1/execute with an envelope. */
  readonly kind: 'public' | 'execute';
  /** Bytes of the note's `text` field (0: a small body). */
  readonly textBytes: number;
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
  readonly servername?: string;
  readonly mode: 'closed' | 'open';
  readonly seconds: number;
  /** Not measured: JIT, pools and connections settle first. */
  readonly warmupSeconds: number;
  /** closed: clients; open: the most connections kept. */
  readonly concurrency: number;
  /** open: requests per second. */
  readonly rate?: number;
}

export interface LoadResult {
  /** Answers in the measured window. */
  readonly requests: number;
  /** Answers including the warm-up (for CPU per request over the whole run). */
  readonly answered: number;
  readonly ok: number;
  /** Status (0: no answer) → count, for answers other than success. */
  readonly failures: Record<string, number>;
  readonly perSecond: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly seconds: number;
}

function bodyFor(spec: LoadSpec): () => { path: string; headers: Record<string, string>; body: string } {
  const note = JSON.stringify({ title: 'bench', text: 'x'.repeat(spec.textBytes), tags: ['bench'] });
  if (spec.kind === 'public')
    return () => ({ path: '/notes', headers: { 'content-type': 'application/json' }, body: note });
  const parsed: unknown = JSON.parse(note);
  return () => {
    const id = randomUUID();
    const now = Date.now();
    const envelope = {
      v: 1,
      id,
      route: 'notes.create',
      method: 'POST',
      path: '/notes',
      params: {},
      query: {},
      headers: { 'content-type': 'application/json' },
      body: parsed,
      clientIp: '198.18.0.10',
      gatewayId: 'bench',
      replyTo: 'bench',
      receivedAt: now,
      deadline: now + 30000,
    };
    return {
      path: '/v1/execute',
      headers: { 'content-type': 'application/json', 'idempotency-key': id },
      body: JSON.stringify(envelope),
    };
  };
}

/** A success: 201 from the public API; 200 wrapping the handler's 201 from the core. */
function succeeded(spec: LoadSpec, status: number, text: string): boolean {
  if (spec.kind === 'public') return status === 201;
  return status === 200 && text.startsWith('{"status":201');
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const agent = new https.Agent({
    keepAlive: true,
    // An idle socket is closed after 4 s, before the gateway's keepAliveTimeout (5 s) closes it:
    // reused just as the server closes it, a request dies with ECONNRESET, a client's race and no
    // fault of the server (nodejs/node#47130). It cost the 2026-12-04 soak one request in 410k.
    timeout: 4000,
    maxSockets: spec.concurrency,
    ca: readFileSync(spec.ca),
    ...(spec.cert !== undefined ? { cert: readFileSync(spec.cert) } : {}),
    ...(spec.key !== undefined ? { key: readFileSync(spec.key) } : {}),
    ...(spec.servername !== undefined ? { servername: spec.servername } : {}),
  });
  const base = new URL(spec.url);
  const next = bodyFor(spec);
  const send = () =>
    new Promise<{ status: number; text: string }>((resolve) => {
      const { path, headers, body } = next();
      const req = https.request(
        {
          host: base.hostname,
          port: base.port === '' ? 443 : Number(base.port),
          path,
          method: 'POST',
          agent,
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
          timeout: 30000,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            if (text.length < 64) text += d;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          res.on('error', (err: NodeJS.ErrnoException) =>
            resolve({ status: 0, text: err.code ?? err.message }),
          );
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
      // No answer: counted under "0 <code>" (ECONNRESET, TIMEOUT, …), so a failure says what it was.
      req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, text: err.code ?? err.message }));
      req.end(body);
    });

  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let ok = 0;
  let answered = 0;
  const warmupEnd = performance.now() + spec.warmupSeconds * 1000;
  const end = warmupEnd + spec.seconds * 1000;
  const record = (due: number, status: number, text: string) => {
    const done = performance.now();
    answered++;
    if (due < warmupEnd) return;
    latencies.push(done - due);
    if (succeeded(spec, status, text)) ok++;
    else {
      const key = status === 0 ? `0 ${text}` : String(status);
      failures[key] = (failures[key] ?? 0) + 1;
    }
  };

  if (spec.mode === 'closed') {
    const client = async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const { status, text } = await send();
        if (t0 < end) record(t0, status, text);
      }
    };
    await Promise.all(Array.from({ length: spec.concurrency }, client));
  } else {
    const rate = spec.rate ?? 0;
    if (!(rate > 0)) throw new Error('load: open mode needs a rate > 0');
    const start = performance.now();
    const total = Math.floor(((end - start) / 1000) * rate);
    const pending: Promise<void>[] = [];
    for (let i = 0; i < total;) {
      const now = performance.now();
      // Send every request that is due by now; each is timed from its due moment.
      while (i < total && start + (i * 1000) / rate <= now) {
        const due = start + (i * 1000) / rate;
        pending.push(send().then(({ status, text }) => record(due, status, text)));
        i++;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(pending);
  }
  agent.destroy();

  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies.length === 0
      ? 0
      : Number(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(2));
  return {
    requests: latencies.length,
    answered,
    ok,
    failures,
    perSecond: Math.round(ok / spec.seconds),
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: at(1),
    seconds: spec.seconds,
  };
}

if (process.argv[1]?.endsWith('load.js') === true && process.argv[2] !== undefined) {
  const spec = JSON.parse(process.argv[2]) as LoadSpec;
  console.log(JSON.stringify(await runLoad(spec)));
}
