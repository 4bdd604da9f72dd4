// What each compression level costs and gains on the gateway's kinds of answers: a JSON reply, an
// HTML page and a JavaScript bundle, compressed by gateway/compression.ts as the gateway does.
// `node dist/bench/compression.js` prints, per body and level, the ratio and the CPU time per MiB
// (the process's, zlib's thread pool included; one warm-up run first):
// the numbers behind the defaults (dynamic brotli 5 / gzip 6, static brotli 9 / gzip 9).
import { compress, type Coding } from '../gateway/compression.js';

const BODIES: Record<string, Buffer> = {
  'json 64 KiB': Buffer.from(
    JSON.stringify({
      entries: Array.from({ length: 700 }, (_, i) => ({
        id: i,
        title: `note ${i}`,
        at: 1764633600000 + i * 977,
      })),
    }),
  ),
  'html 64 KiB': Buffer.from(
    Array.from(
      { length: 900 },
      (_, i) => `<li><a href="/notes/${i}">Note number ${(i * 7919) % 10007}</a></li>`,
    ).join('\n'),
  ),
  'js 512 KiB': Buffer.from(
    Array.from(
      { length: 12000 },
      (_, i) => `export function f${i}(a, b) { return a * ${(i * 31) % 97} + b; }`,
    ).join('\n'),
  ),
};

const LEVELS: readonly [Coding, number][] = [
  ['gzip', 1],
  ['gzip', 6],
  ['gzip', 9],
  ['br', 1],
  ['br', 4],
  ['br', 5],
  ['br', 9],
  ['br', 11],
];

async function main(): Promise<void> {
  console.log('body          coding level  ratio  ms/MiB');
  for (const [name, body] of Object.entries(BODIES)) {
    for (const [coding, level] of LEVELS) {
      const levels = { brotliQuality: level, gzipLevel: level };
      const runs = body.length > 100_000 && level >= 10 ? 1 : 5;
      await compress(body, coding, levels);
      const start = process.cpuUsage();
      let out: Buffer = Buffer.alloc(0);
      for (let i = 0; i < runs; i++) out = await compress(body, coding, levels);
      const used = process.cpuUsage(start);
      const ms = (used.user + used.system) / 1000 / runs;
      const perMiB = (ms * 1048576) / body.length;
      console.log(
        `${name.padEnd(13)} ${coding.padEnd(6)} ${String(level).padStart(5)}  ${(body.length / out.length).toFixed(1).padStart(5)}  ${perMiB.toFixed(1).padStart(6)}`,
      );
    }
  }
}

await main();
