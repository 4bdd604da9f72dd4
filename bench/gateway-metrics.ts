// What the gateway's metrics cost a request and a scrape (gateway/metrics.ts), in this process:
// tracking a request (a listener on its response, its route set, its end counted) against the
// same response events untracked, and the time a scrape holds the event loop, for a route table
// of --routes routes each answered with five statuses.
//   node dist/bench/gateway-metrics.js [--requests 1000000] [--routes 64]
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { FIXED_ROUTES, GatewayMetrics } from '../gateway/metrics.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '1000000' },
    routes: { type: 'string', default: '64' },
  },
});
const requests = Number(values.requests);
const names = Array.from({ length: Number(values.routes) }, (_, i) => `bench.route_${i}`);
const STATUSES = [200, 201, 304, 404, 503];

class FakeResponse extends EventEmitter {
  statusCode = 200;
  writableEnded = true;
}

function run(track: boolean): number {
  const metrics = new GatewayMetrics(names, { pending: () => 0 }, { processMetrics: false });
  const refused = metrics.seriesOf(FIXED_ROUTES.refused);
  const series = names.map((n) => metrics.seriesOf(n));
  const started = performance.now();
  for (let i = 0; i < requests; i++) {
    const res = new FakeResponse() as FakeResponse & ServerResponse;
    if (track) metrics.track(res, refused).route = series[i % series.length]!;
    res.statusCode = STATUSES[i % STATUSES.length]!;
    res.emit('finish');
    res.emit('close');
  }
  return ((performance.now() - started) * 1e6) / requests;
}

// Warm both paths up first, so that neither pays for the JIT in its measurement.
const full = requests;
for (const track of [false, true]) run(track);
const base = Math.min(run(false), run(false));
const tracked = Math.min(run(true), run(true));

const metrics = new GatewayMetrics(names, { pending: () => 0 });
for (const s of names.map((n) => metrics.seriesOf(n))) {
  for (const status of STATUSES) metrics.count(s, String(status), 0.02);
}
await metrics.text();
const scrapes: number[] = [];
let bytes = 0;
for (let i = 0; i < 20; i++) {
  const t = performance.now();
  bytes = (await metrics.text()).length;
  scrapes.push(performance.now() - t);
}
scrapes.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    requests: full,
    routes: names.length,
    untrackedNsPerRequest: Math.round(base),
    trackedNsPerRequest: Math.round(tracked),
    metricsNsPerRequest: Math.round(tracked - base),
    scrapeMsMedian: Number(scrapes[10]!.toFixed(2)),
    scrapeMsMax: Number(scrapes[19]!.toFixed(2)),
    scrapeBytes: bytes,
  }),
);
