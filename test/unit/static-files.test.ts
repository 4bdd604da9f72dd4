// The pure rules of the gateway's static files: ranges, hashed names, ETag lists and
// conditionals, path checks, and the start-time mount checks against routes.
import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { shadows, staticMountProblems } from '../../config/static-mounts.js';
import type { RoutesConfig } from '../../config/schemas/routes.js';
import { EtagCache } from '../../gateway/static-etag.js';
import { contentTypeOf, etagOf, isHashedName, parseRange } from '../../gateway/static-http.js';
import { ifRangeMatches, notModified, parseEtagList } from '../../gateway/conditional.js';
import { checkStaticPath } from '../../gateway/static-path.js';
import { tempDir } from '../helpers/files.js';

test('parseRange: single ranges, suffixes, clipping, unsatisfiable, multiple, ignored', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), { kind: 'range', start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { kind: 'range', start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { kind: 'range', start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-500', 100), { kind: 'range', start: 0, end: 99 });
  assert.deepEqual(parseRange('bytes=50-5000', 100), { kind: 'range', start: 50, end: 99 });
  assert.deepEqual(parseRange('Bytes = 1-1', 100), { kind: 'range', start: 1, end: 1 });
  assert.deepEqual(parseRange('bytes=100-', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=100-200', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=-0', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=0-', 0), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=-1', 0), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=0-1,3-4', 100), { kind: 'multiple' });
  for (const ignored of [
    undefined,
    'items=0-1',
    'bytes=',
    'bytes=5-2',
    'bytes=a-b',
    'bytes=1-2-3',
    'bytes=--1',
    '0-1',
  ]) {
    assert.deepEqual(parseRange(ignored, 100), { kind: 'none' }, String(ignored));
  }
  assert.deepEqual(
    parseRange(`bytes=0-${'9'.repeat(20)}`, 100),
    { kind: 'none' },
    'absurd numbers are not parsed',
  );
});

test('hashed names: hex and base64url segments before the extension, never plain words', () => {
  for (const name of [
    'app.3f2a9c1b.js',
    'app-3F2A9C1B.css',
    'index-BfC7sD2a.js',
    'chunk.a1b2c3d4e5f6.min.js',
    '3f2a9c1b.js',
    'vendor-Ab_cdEfg.js',
    'font-9x8y7z6w.woff2',
  ]) {
    assert.equal(isHashedName(name), true, name);
  }
  for (const name of [
    'app.js',
    'bootstrap-datepicker.js',
    'app.3f2a9c.js',
    'deadbeef.js',
    'app.min.js',
    'README',
    'style.css',
    'app.3f2a9c1b', // the hash is the extension: no name before it is hashed
  ]) {
    assert.equal(isHashedName(name), false, name);
  }
});

test('content types by extension, case-insensitive, unknown as octet-stream', () => {
  assert.equal(contentTypeOf('a.HTML'), 'text/html; charset=utf-8');
  assert.equal(contentTypeOf('a.mjs'), 'text/javascript; charset=utf-8');
  assert.equal(contentTypeOf('a.js.map'), 'application/json; charset=utf-8');
  assert.equal(contentTypeOf('a.jpeg'), 'image/jpeg');
  assert.equal(contentTypeOf('a.avif'), 'image/avif');
  assert.equal(contentTypeOf('a.ico'), 'image/x-icon');
  assert.equal(contentTypeOf('a.otf'), 'font/otf');
  assert.equal(contentTypeOf('a.pdf'), 'application/pdf');
  assert.equal(contentTypeOf('Makefile'), 'application/octet-stream');
  assert.equal(contentTypeOf('a.exe'), 'application/octet-stream');
});

test('ETag lists, weak comparison for If-None-Match, strong for If-Range', () => {
  assert.equal(parseEtagList(' * '), '*');
  assert.deepEqual(parseEtagList('"a", W/"b" ,"c"'), ['"a"', 'W/"b"', '"c"']);
  assert.deepEqual(parseEtagList('"a", garbage, "c"'), ['"a"']);
  const v = { etag: '"10-abc"', mtimeMs: Date.parse('2026-01-02T03:04:05Z') + 250 };
  assert.equal(notModified('W/"10-abc"', undefined, v), true);
  assert.equal(notModified('"x", "10-abc"', undefined, v), true);
  assert.equal(notModified('"x"', 'Fri, 02 Jan 2026 03:04:05 GMT', v), false, 'If-None-Match decides');
  assert.equal(notModified(undefined, 'Fri, 02 Jan 2026 03:04:05 GMT', v), true, 'second precision');
  assert.equal(notModified(undefined, 'Fri, 02 Jan 2026 03:04:04 GMT', v), false);
  assert.equal(notModified(undefined, 'garbage', v), false);
  assert.equal(notModified(undefined, undefined, v), false);
  assert.equal(ifRangeMatches(undefined, v), true);
  assert.equal(ifRangeMatches('"10-abc"', v), true);
  assert.equal(ifRangeMatches('W/"10-abc"', v), false);
  assert.equal(ifRangeMatches('Fri, 02 Jan 2026 03:04:05 GMT', v), true);
  assert.equal(ifRangeMatches('Fri, 02 Jan 2026 03:04:06 GMT', v), false);
  assert.equal(ifRangeMatches('soon', v), false);
});

test('path checks: traversal and separators are bad, dotfiles hidden, the rest decoded', () => {
  assert.deepEqual(checkStaticPath('css/app%20x.css'), {
    kind: 'ok',
    segments: ['css', 'app x.css'],
    directory: false,
  });
  assert.deepEqual(checkStaticPath(''), { kind: 'ok', segments: [], directory: true });
  assert.deepEqual(checkStaticPath('docs/'), { kind: 'ok', segments: ['docs'], directory: true });
  for (const bad of [
    '../x',
    'a/../../x',
    '%2e%2e/x',
    '%2E%2e/x',
    '.%2E/x',
    '..%2fx',
    'a%2Fb',
    'a%5cb',
    'a\\b',
    'a\0b',
    'a%00b',
    '%E0%A4%A',
    '%',
    './x',
    'a//b',
    `${'a'.repeat(256)}.js`,
  ]) {
    assert.equal(checkStaticPath(bad).kind, 'bad', JSON.stringify(bad));
  }
  assert.equal(checkStaticPath('.env').kind, 'hidden');
  assert.equal(checkStaticPath('%2egit/config').kind, 'hidden');
  assert.equal(checkStaticPath('a/.well-known/x').kind, 'hidden');
  assert.equal(checkStaticPath('.git/../x').kind, 'bad', 'traversal is reported before hiding');
});

test('a mount shadows a route when some path under it matches the route', () => {
  assert.equal(shadows('/assets/', '/assets/:file'), true);
  assert.equal(shadows('/assets/', '/assets/logo.png'), true);
  assert.equal(shadows('/assets/', '/:section/x'), true);
  assert.equal(shadows('/', '/'), true);
  assert.equal(shadows('/', '/notes'), true);
  assert.equal(shadows('/assets/', '/assets'), false, '/assets is not under /assets/');
  assert.equal(shadows('/assets/', '/notes/:id'), false);
  assert.equal(shadows('/a/b/', '/a/:x'), false, 'too short to reach under the mount');
  assert.equal(shadows('/a/b/', '/a/c/d'), false);
  const routes: RoutesConfig = {
    kind: 'routes',
    routes: [
      {
        name: 'files.get',
        method: 'GET',
        path: '/files/:name',
        bodyTypes: ['json'],
        multipart: { maxParts: 1, maxFileBytes: 1, maxFieldBytes: 1 },
        cookies: [],
        schema: {},
      },
    ],
  };
  const mount = { dir: '/', maxAgeSeconds: 1, index: false };
  assert.deepEqual(staticMountProblems([{ ...mount, path: '/assets/' }], routes), []);
  const problems = staticMountProblems(
    [
      { ...mount, path: '/files/' },
      { ...mount, path: '/files/x/' },
      { ...mount, path: '/h/', dir: '/nonexistent-nonstop-dir' },
    ],
    routes,
  ).map((p) => `${p.field} ${p.expected}`);
  // /files/x/ itself shadows nothing: its paths have three segments, the route two.
  assert.equal(problems.length, 3, problems.join('\n'));
  assert.match(problems[0]!, /^static\[0\]\.path .*would shadow route "files\.get"/);
  assert.match(problems[1]!, /^static\[1\]\.path .*must not lie one inside the other/);
  assert.match(problems[2]!, /^static\[2\]\.dir must be an existing folder/);
});

test('EtagCache: content tags (right with a one-entry cache too), size+mtime past the hashing limit', async (t) => {
  const dir = tempDir(t);
  const small = join(dir, 'a.txt');
  const other = join(dir, 'b.txt');
  const big = join(dir, 'big.bin');
  writeFileSync(small, 'same');
  writeFileSync(other, 'same');
  writeFileSync(big, 'more than eight bytes');
  const cache = new EtagCache(1, 8);
  const a = await cache.etag(small, statSync(small));
  assert.match(a, /^"[A-Za-z0-9_-]{22}"$/);
  assert.equal(await cache.etag(other, statSync(other)), a, 'equal content, equal tag');
  assert.equal(await cache.etag(small, statSync(small), '-br'), `${a.slice(0, -1)}-br"`);
  const st = statSync(big);
  assert.equal(await cache.etag(big, st), etagOf(st.size, st.mtimeMs));
  assert.match(etagOf(st.size, st.mtimeMs), /^"15-[0-9a-f]+"$/);
});
