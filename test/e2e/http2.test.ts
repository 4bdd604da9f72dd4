// HTTP/2 through the whole system, from the internet host: curl --http2 negotiates h2 with a
// gateway and gets the application's answer; h2load's short burst over 4 connections with 10
// streams each is all 2xx; a rapid-reset client (test/world/h2-reset.ts) gets GOAWAY and its
// session closed, and the gateway's other clients are answered meanwhile and after. And the
// site's stylesheet comes compressed (br) over h2, with Vary, and decodes to the file's bytes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sampleProc } from '../../bench/proc.js';
import { SITE_NAME, ThreeTier, type GatewayNode } from '../../world/three-tier.js';
import { GUESTBOOK_ASSETS } from '../../world/host-configs.js';
import { packageRoot, worldSkipReason } from '../../world/world.js';

const skip = worldSkipReason();
const RESET = 'dist/test/world/h2-reset.js';
/** ENHANCE_YOUR_CALM, the code gateway/http2-guard.ts ends a resetting session with. */
const ENHANCE_YOUR_CALM = 0xb;
/** Connections of the sustained attack, one after another. */
const SESSIONS = 40;

describe('HTTP/2 from the internet', { skip }, () => {
  let tt: ThreeTier;
  before(async () => {
    tt = await ThreeTier.start();
    await tt.waitUntilServing(90_000);
  });
  after(() => tt?.close());

  /** test/world/h2-reset.ts from inet against `g`: `sessions` connections, one after another. */
  const resetAttack = (g: GatewayNode, sessions: number) =>
    tt.inet.runNode(
      RESET,
      [
        JSON.stringify({
          url: `https://${g.host.ip4}`,
          ca: tt.publicCaFile,
          servername: SITE_NAME,
          count: 5000,
          sessions,
        }),
      ],
      { timeoutMs: 30_000 * sessions },
    );

  test(
    'the stylesheet comes compressed over HTTP/2 and decodes to the file',
    { timeout: 60_000 },
    async () => {
      const g = tt.gateway('gw2');
      const url = `https://${SITE_NAME}${GUESTBOOK_ASSETS.path}guestbook.css`;
      const curl = (args: string[]) =>
        tt.inet.exec('curl', [
          '--http2',
          '-sS',
          '--cacert',
          tt.publicCaFile,
          '--resolve',
          `${SITE_NAME}:443:${g.host.ip4}`,
          ...args,
          url,
        ]);
      const headers = await curl(['-H', 'accept-encoding: br', '-o', '/dev/null', '-D', '-']);
      assert.equal(headers.code, 0, headers.stderr);
      assert.match(headers.stdout, /^HTTP\/2 200/);
      assert.match(headers.stdout, /^content-encoding: br\r?$/m);
      assert.match(headers.stdout, /^vary: accept-encoding\r?$/im);
      const decoded = await curl(['--compressed']);
      assert.equal(decoded.code, 0, decoded.stderr);
      const file = readFileSync(join(packageRoot(), GUESTBOOK_ASSETS.dir, 'guestbook.css'), 'utf8');
      assert.equal(decoded.stdout, file);
    },
  );

  test(
    'curl --http2 reports HTTP/2 and gets the answer through the system',
    { timeout: 60_000 },
    async () => {
      const g = tt.gateway('gw1');
      const r = await tt.inet.exec('curl', [
        '--http2',
        '-sS',
        '--cacert',
        tt.publicCaFile,
        '--resolve',
        `${SITE_NAME}:443:${g.host.ip4}`,
        '-w',
        '\n%{http_version} %{http_code}',
        `https://${SITE_NAME}/notes?limit=1`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.at(-1), '2 200');
      const body = JSON.parse(lines.slice(0, -1).join('\n')) as { error?: unknown };
      assert.equal(body.error, undefined, 'the application answered, not the gateway');
      // Plain HTTP stays HTTP/1.1 (no h2c): curl's prior-knowledge h2 gets no HTTP/2 answer.
      const h2c = await tt.inet.exec('curl', [
        '--http2-prior-knowledge',
        '-sS',
        '-o',
        '/dev/null',
        `http://${g.host.ip4}/healthz`,
      ]);
      assert.notEqual(h2c.code, 0);
    },
  );

  test(
    'h2load: 200 requests over 4 connections, 10 streams each, all 2xx',
    { timeout: 120_000 },
    async () => {
      const g = tt.gateway('gw1');
      // h2load does not verify the certificate; curl above did.
      const r = await tt.inet.exec(
        'h2load',
        ['-n', '200', '-c', '4', '-m', '10', `https://${g.host.ip4}/notes?limit=1`],
        {
          timeoutMs: 90_000,
        },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Application protocol: h2/);
      assert.match(
        r.stdout,
        /requests: 200 total, 200 started, 200 done, 200 succeeded, 0 failed, 0 errored/,
      );
      assert.match(r.stdout, /status codes: 200 2xx, 0 3xx, 0 4xx, 0 5xx/);
    },
  );

  test(
    'a rapid-reset client gets GOAWAY and a closed session; other clients are served',
    { timeout: 120_000 },
    async (t) => {
      const g = tt.gateway('gw1');
      const attack = resetAttack(g, 1);
      const during = tt.requests('gw1', [
        { path: '/notes?limit=1', https: true },
        { path: '/notes?limit=1', https: true },
      ]);
      const r = await attack;
      const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
      assert.ok(line, `code ${r.code}: ${r.stdout} ${r.stderr}`);
      t.diagnostic(line);
      const seen = JSON.parse(line) as {
        goaway: number | null;
        goaways: number[];
        opened: number;
        closed: boolean;
      };
      const proc = g.gateway;
      const h2Log = [...proc.lines, ...proc.stderrLines].filter((l) => l.includes('HTTP/2')).slice(-5);
      assert.equal(seen.goaway, ENHANCE_YOUR_CALM, `${line}\ngateway: ${h2Log.join('\n')}`);
      assert.ok(
        seen.goaways.every((code) => code === ENHANCE_YOUR_CALM),
        'no GOAWAY says the session ended without error',
      );
      assert.equal(seen.closed, true, 'the gateway closed the session');
      for (const a of await during) assert.equal(a.status, 200, a.error);
      assert.equal((await tt.request('gw1', { path: '/notes?limit=1', https: true })).status, 200);
    },
  );

  test(
    'rapid reset, reconnecting: every session is ended, and the gateway stays bounded in CPU and memory',
    { timeout: 300_000 },
    async (t) => {
      const g = tt.gateway('gw1');
      const pid = g.gateway.pid;
      const before = sampleProc(pid);
      const started = Date.now();
      const r = await resetAttack(g, SESSIONS);
      const wallSeconds = (Date.now() - started) / 1000;
      const after = sampleProc(pid);
      const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
      assert.ok(line, `code ${r.code}: ${r.stdout} ${r.stderr}`);
      const { sessions } = JSON.parse(line) as {
        sessions: { goaway: number | null; opened: number; closed: boolean }[];
      };
      const figures = {
        sessions: sessions.length,
        streamsSent: sessions.reduce((n, s) => n + s.opened, 0),
        wallSeconds: +wallSeconds.toFixed(2),
        gatewayCpuSeconds: +(after.cpuSeconds - before.cpuSeconds).toFixed(2),
        rssKiBBefore: before.rssKiB,
        rssKiBAfter: after.rssKiB,
        hwmKiBBefore: before.hwmKiB,
        hwmKiBAfter: after.hwmKiB,
      };
      t.diagnostic(`rapid-reset figures: ${JSON.stringify(figures)}`);
      assert.equal(sessions.length, SESSIONS);
      for (const s of sessions) {
        assert.equal(s.goaway, ENHANCE_YOUR_CALM, JSON.stringify(s));
        assert.equal(s.closed, true);
      }
      // Bounded: what the attack leaves resident, and its peak, are a few sessions' worth, not
      // a sum over the streams it sent (the limits are generous: this is not a benchmark).
      assert.ok(after.rssKiB - before.rssKiB < 64 * 1024, JSON.stringify(figures));
      assert.ok(after.hwmKiB - before.hwmKiB < 128 * 1024, JSON.stringify(figures));
      assert.equal((await tt.request('gw1', { path: '/notes?limit=1', https: true })).status, 200);
    },
  );
});
