// A gateway's honest clients, run inside the internet host: an open-loop stream at a constant
// rate (one request every 1000/rate ms, whatever the answers do), alternating GET /notes and
// POST /notes. When the time is up and every request has ended, prints one JSON line: how many
// were sent, their statuses, and latency percentiles. The attack suite compares two such runs.
//
// argv[2]: { url: string, rate: number, seconds: number, timeoutMs: number, tag: string }
import http from 'node:http';

interface Options {
  readonly url: string;
  readonly rate: number;
  readonly seconds: number;
  readonly timeoutMs: number;
  readonly tag: string;
}

export interface SteadyResult {
  readonly sent: number;
  /** Answers with a 2xx status. */
  readonly ok: number;
  /** Count by status; 0 is no HTTP answer (refused, reset, timed out). */
  readonly statuses: Readonly<Record<string, number>>;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  /** The first few failures, for the report. */
  readonly failures: readonly string[];
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const latencies: number[] = [];
const statuses: Record<string, number> = {};
const failures: string[] = [];

function once(seq: number): Promise<void> {
  const post = seq % 2 === 1;
  const started = performance.now();
  const done = (status: number, why?: string) => {
    latencies.push(performance.now() - started);
    statuses[status] = (statuses[status] ?? 0) + 1;
    if ((status < 200 || status > 299) && failures.length < 10)
      failures.push(`#${seq}: ${status} ${why ?? ''}`);
  };
  return new Promise((resolve) => {
    const req = http.request(
      `${options.url}${post ? '/notes' : '/notes?limit=1'}`,
      {
        method: post ? 'POST' : 'GET',
        agent,
        headers: post ? { 'content-type': 'application/json' } : {},
        timeout: options.timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d.length < 200 ? d : d.slice(0, 200)));
        res.on('end', () => {
          done(res.statusCode ?? 0, text.slice(0, 200));
          resolve();
        });
        res.on('error', (err) => {
          done(0, err.message);
          resolve();
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => {
      done(0, err.message);
      resolve();
    });
    req.end(post ? JSON.stringify({ title: `${options.tag}-${seq}` }) : undefined);
  });
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const total = Math.round(options.rate * options.seconds);
const interval = 1000 / options.rate;
const start = performance.now();
const pending: Promise<void>[] = [];
for (let seq = 0; seq < total; seq++) {
  const due = start + seq * interval;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  pending.push(once(seq));
}
await Promise.all(pending);
agent.destroy();
const sorted = [...latencies].sort((a, b) => a - b);
const round = (n: number) => Math.round(n * 10) / 10;
const result: SteadyResult = {
  sent: total,
  ok: Object.entries(statuses).reduce(
    (sum, [s, n]) => (Number(s) >= 200 && Number(s) < 300 ? sum + n : sum),
    0,
  ),
  statuses,
  p50: round(percentile(sorted, 50)),
  p90: round(percentile(sorted, 90)),
  p99: round(percentile(sorted, 99)),
  max: round(sorted[sorted.length - 1] ?? 0),
  failures,
};
console.log(JSON.stringify(result));
