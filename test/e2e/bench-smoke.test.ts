// `npm run bench` in miniature (a second or two per row), so that the bench cannot rot: it must
// build its world, drive every system with the same client, and write its three files.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { BenchResults } from '../../bench/report.js';
import { packageRoot, worldSkipReason } from '../../world/world.js';

describe('bench smoke run', { skip: worldSkipReason() }, () => {
  const out = mkdtempSync(join(tmpdir(), 'nonstop-bench-smoke-'));
  after(() => rmSync(out, { recursive: true, force: true }));

  test('runs every row and writes the table, the JSON and the chart', async (t) => {
    const { stderr } = await new Promise<{ stderr: string }>((resolve, reject) =>
      execFile(
        process.execPath,
        [join(packageRoot(), 'dist/bench/run.js'), '--smoke', '--out', out, '--name', 'smoke'],
        { timeout: 240_000, maxBuffer: 16 * 1024 * 1024 },
        (err, _stdout, stderr) =>
          err === null ? resolve({ stderr }) : reject(new Error(`${err.message}\n${stderr}`)),
      ),
    );
    t.diagnostic(stderr.trim().split('\n').slice(-3).join(' | '));
    const results = JSON.parse(readFileSync(join(out, 'smoke.json'), 'utf8')) as BenchResults;
    const systems = new Set(results.requestPath.map((r) => r.system));
    assert.deepEqual([...systems].sort(), ['direct', 'nonstop', 'peer']);
    assert.deepEqual([...new Set(results.requestPath.map((r) => r.body))], ['small', '16 KiB']);
    for (const r of results.requestPath) {
      assert.ok(r.saturation.ok > 0, `${r.system} ${r.body}: requests succeed at saturation`);
      assert.ok(r.fixed.ok > 0, `${r.system} ${r.body}: requests succeed at the fixed rate`);
      assert.ok(r.fixed.p99 >= r.fixed.p50 && r.fixed.p50 > 0, `${r.system} ${r.body}: percentiles`);
      assert.deepEqual(r.saturation.failures, {}, `${r.system} ${r.body}: no failures at saturation`);
    }
    const flood = results.guard?.flood;
    assert.ok(flood !== undefined && flood.guard.packets > 0 && flood.knockd.packets > 0, 'flood measured');
    assert.ok((flood.guard.seen ?? 0) > 0, 'the guard saw knock-port SYNs');
    const spa = results.guard?.spaFlood;
    assert.ok(spa !== undefined, 'SPA flood measured');
    for (const side of [spa.guard, spa.guardUnlimited, spa.fwknopd]) assert.ok(side.packets > 0);
    assert.ok(
      (spa.guardUnlimited.seen ?? 0) > (spa.guard.seen ?? 0),
      'the guard limits held back part of the flood',
    );
    assert.ok(results.recovery?.brokerStartToFirstMs !== undefined, 'broker start measured');
    for (const d of ['gateway', 'broker', 'core', 'guard'])
      assert.ok((results.rss?.idle[d] ?? 0) > 0 && (results.rss?.saturation[d] ?? 0) > 0, `RSS of ${d}`);

    const md = readFileSync(join(out, 'smoke.md'), 'utf8');
    assert.match(md, /\| small \| nonstop \| \d+ \|/);
    assert.match(md, /nonstop\/peer req\/s/);
    assert.match(md, /\| fwknopd \| \d+ \|/);
    const svg = readFileSync(join(out, 'smoke.svg'), 'utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.equal((svg.match(/<rect /g) ?? []).length > 6, true, 'bars drawn');
    assert.match(svg, /<\/svg>\n$/);
  });
});
