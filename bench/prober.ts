// A steady trickle of requests for the recovery measurements, run inside the client's host:
//   node dist/bench/prober.js URL CA_FILE [EVERY_MS]
// Sends POST /notes every EVERY_MS (default 20) whether or not earlier ones were answered, and
// prints one JSON line per answer: { sent, done, status } (ms since epoch; status 0: no answer).
// It runs until killed.
import { readFileSync } from 'node:fs';
import https from 'node:https';

const [url, caFile, every = '20'] = process.argv.slice(2);
if (url === undefined || caFile === undefined) {
  console.error('usage: prober URL CA_FILE [EVERY_MS]');
  process.exit(2);
}
const agent = new https.Agent({ keepAlive: true, maxSockets: 64, ca: readFileSync(caFile) });
const body = JSON.stringify({ title: 'probe' });
const target = new URL('/notes', url);

function send(): void {
  const sent = Date.now();
  const report = (status: number) => console.log(JSON.stringify({ sent, done: Date.now(), status }));
  const req = https.request(
    target,
    {
      method: 'POST',
      agent,
      timeout: 15000,
      headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
    },
    (res) => {
      res.resume();
      res.on('end', () => report(res.statusCode ?? 0));
      res.on('error', () => report(0));
    },
  );
  req.on('timeout', () => req.destroy());
  req.on('error', () => report(0));
  req.end(body);
}

setInterval(send, Number(every));
console.log(JSON.stringify({ ready: true }));
