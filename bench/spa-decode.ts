// What decodeSpa costs per datagram: random bytes (refused at the alphabet), base64 text of a
// possible SPA length (refused at the HMAC, once per client key), and valid packets (HMAC,
// decrypt, parse). One core, no network.
//   node dist/bench/spa-decode.js [--keys 2] [--garbage 100000] [--valid 10000]
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { decodeSpa, encodeSpa, generateSpaKeys } from '../knock/spa.js';

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '2' },
    garbage: { type: 'string', default: '100000' },
    valid: { type: 'string', default: '10000' },
  },
});
const keys = Array.from({ length: Number(values.keys) }, (_, i) => generateSpaKeys(`client${i}`));
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const bytes = (seed: string, n: number) => {
  const parts: Buffer[] = [];
  for (let i = 0; parts.length * 32 < n; i++)
    parts.push(createHash('sha256').update(`${seed}:${i}`).digest());
  return Buffer.concat(parts).subarray(0, n);
};

function measure(label: string, packets: Buffer[], expectOk: boolean, nowMs: number): void {
  for (const p of packets.slice(0, 1000)) decodeSpa(p, keys, { nowMs }); // warm up
  const start = process.hrtime.bigint();
  let ok = 0;
  for (const p of packets) if (decodeSpa(p, keys, { nowMs }).ok) ok++;
  const us = Number(process.hrtime.bigint() - start) / 1000 / packets.length;
  if ((ok === packets.length) !== expectOk || (!expectOk && ok !== 0))
    throw new Error(`${label}: ${ok} accepted`);
  console.log(
    `${label.padEnd(44)} ${String(packets.length).padStart(7)} packets  ${us.toFixed(2).padStart(8)} µs/packet`,
  );
}

const now = Date.now();
const n = Number(values.garbage);
const random = Array.from({ length: 256 }, (_, i) => bytes(`r${i}`, 204 + (i % 64)));
// A canonical 43-character tag, so that every key's HMAC is computed (the worst case).
const base64 = Array.from({ length: 256 }, (_, i) =>
  Buffer.concat([
    Buffer.from([...bytes(`b${i}`, 161)].map((b) => B64.charCodeAt(b % 64))),
    Buffer.from(bytes(`t${i}`, 32).toString('base64').slice(0, 43)),
  ]),
);
const valid = Array.from({ length: Number(values.valid) }, (_, i) =>
  encodeSpa({ username: 'bench', accessAddress: '192.0.2.7', access: 'tcp/22' }, keys[i % keys.length]!, now),
);
console.log(`${keys.length} client keys`);
measure(
  'random bytes, SPA-sized (alphabet check)',
  Array.from({ length: n }, (_, i) => random[i % 256]!),
  false,
  now,
);
measure(
  'base64, 204 chars (HMAC × every key)',
  Array.from({ length: n }, (_, i) => base64[i % 256]!),
  false,
  now,
);
measure('valid packets (HMAC, decrypt, parse)', valid, true, now);
