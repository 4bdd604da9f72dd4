// Response compression's rules: Accept-Encoding negotiation, what is compressible, the route
// table's BREACH policy, the ETag of a compressed variant, and the bounded cache of static ones.
import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import {
  acceptedCodings,
  chooseCoding,
  compress,
  compressionFor,
  isCompressibleType,
  mayCompressReply,
  variantEtag,
} from '../../gateway/compression.js';
import { CompressedVariants } from '../../gateway/static-compressed.js';
import { tempDir } from '../helpers/files.js';

const CONFIG = { enabled: true, minBytes: 1024 };
const LEVELS = { brotliQuality: 4, gzipLevel: 6 };

test('Accept-Encoding: q values, q=0, *, identity, x-gzip, malformed q', () => {
  assert.deepEqual(acceptedCodings(undefined), { br: 0, gzip: 0, identity: 1 });
  assert.deepEqual(acceptedCodings(''), { br: 0, gzip: 0, identity: 1 }, 'empty: identity only');
  assert.deepEqual(acceptedCodings('gzip, br'), { br: 1, gzip: 1, identity: 1 });
  assert.deepEqual(acceptedCodings('br;q=0, gzip;q=0.5'), { br: 0, gzip: 0.5, identity: 1 });
  assert.deepEqual(acceptedCodings('*'), { br: 1, gzip: 1, identity: 1 });
  assert.deepEqual(acceptedCodings('*;q=0.2, br;q=0'), { br: 0, gzip: 0.2, identity: 0.2 });
  assert.deepEqual(acceptedCodings('*;q=0, identity'), { br: 0, gzip: 0, identity: 1 });
  assert.deepEqual(acceptedCodings('gzip, identity;q=0'), { br: 0, gzip: 1, identity: 0 });
  assert.deepEqual(acceptedCodings('x-gzip'), { br: 0, gzip: 1, identity: 1 });
  assert.deepEqual(acceptedCodings('BR; Q=0.7'), { br: 0.7, gzip: 0, identity: 1 });
  assert.deepEqual(
    acceptedCodings('br;q=2, gzip;q=abc'),
    { br: 0, gzip: 0, identity: 1 },
    'malformed q is 0',
  );
});

test('chooseCoding: br on a tie, the higher q, identity when preferred or nothing fits', () => {
  const both = ['br', 'gzip'] as const;
  assert.equal(chooseCoding('gzip, br', both), 'br', 'br wins a tie');
  assert.equal(chooseCoding('br, gzip', both), 'br');
  assert.equal(chooseCoding('gzip', both), 'gzip');
  assert.equal(chooseCoding('gzip;q=1, br;q=0.5', both), 'gzip');
  assert.equal(chooseCoding('*', both), 'br');
  assert.equal(chooseCoding('br', ['gzip']), undefined);
  assert.equal(chooseCoding('gzip;q=0', ['gzip']), undefined);
  assert.equal(chooseCoding('identity', both), undefined);
  assert.equal(chooseCoding(undefined, both), undefined);
  assert.equal(chooseCoding('br;q=0.1, identity', both), undefined, 'identity rated above br');
  assert.equal(chooseCoding('gzip;q=0.9', both), 'gzip', 'an unnamed identity ranks below');
  assert.equal(chooseCoding('*;q=0.5, br;q=0.1', both), 'gzip');
  assert.equal(chooseCoding('br, identity;q=0', both), 'br');
  assert.equal(chooseCoding('identity;q=0', both), undefined, 'nothing acceptable: identity all the same');
});

test('compressible types: text, JSON, XML, SVG, uncompressed fonts; never images, video, archives, woff2', () => {
  for (const type of [
    'text/html; charset=utf-8',
    'TEXT/CSS',
    'text/javascript; charset=utf-8',
    'application/json; charset=utf-8',
    'application/problem+json',
    'application/atom+xml',
    'application/manifest+json; charset=utf-8',
    'image/svg+xml; charset=utf-8',
    'application/wasm',
    'font/ttf',
  ]) {
    assert.equal(isCompressibleType(type), true, type);
  }
  for (const type of [
    undefined,
    'image/png',
    'image/jpeg',
    'image/webp',
    'video/mp4',
    'audio/ogg',
    'application/zip',
    'application/gzip',
    'font/woff',
    'font/woff2',
    'application/pdf',
    'application/octet-stream',
    'application/json+zip',
  ]) {
    assert.equal(isCompressibleType(type), false, String(type));
  }
});

test('compressionFor: enabled, a body big enough, a compressible type, no no-transform', () => {
  const json = { status: 200, contentType: 'application/json', size: 4096 };
  assert.deepEqual(compressionFor(CONFIG, json, 'br, gzip'), { vary: true, coding: 'br' });
  assert.deepEqual(compressionFor(CONFIG, json, 'identity'), { vary: true, coding: undefined });
  assert.deepEqual(compressionFor(CONFIG, json, undefined), { vary: true, coding: undefined });
  assert.deepEqual(compressionFor(CONFIG, { ...json, status: 404 }, 'gzip'), { vary: true, coding: 'gzip' });
  const none = { vary: false, coding: undefined };
  assert.deepEqual(compressionFor({ ...CONFIG, enabled: false }, json, 'br'), none);
  assert.deepEqual(compressionFor(CONFIG, { ...json, size: 1023 }, 'br'), none, 'under minBytes');
  assert.deepEqual(compressionFor(CONFIG, { ...json, size: 0 }, 'br'), none);
  assert.deepEqual(compressionFor({ ...CONFIG, minBytes: 0 }, { ...json, size: 0 }, 'br'), none);
  for (const status of [204, 206, 304])
    assert.deepEqual(compressionFor(CONFIG, { ...json, status }, 'br'), none, String(status));
  assert.deepEqual(compressionFor(CONFIG, { ...json, contentType: 'image/png' }, 'br'), none);
  assert.deepEqual(
    compressionFor(CONFIG, { ...json, cacheControl: 'public, no-transform' }, 'br'),
    none,
    'no-transform',
  );
});

test('the BREACH policy: the route decides, then the table; by default no cookies either way', () => {
  const plain = { cookies: [] as string[] };
  const session = { cookies: ['session'] };
  assert.equal(mayCompressReply(plain, {}, false), true, 'no cookie read, none set');
  assert.equal(mayCompressReply(plain, {}, true), false, 'the reply sets a cookie');
  assert.equal(mayCompressReply(session, {}, false), false, 'the route reads a cookie');
  assert.equal(mayCompressReply({ ...session, compress: true }, {}, true), true, 'the route opts in');
  assert.equal(mayCompressReply({ ...plain, compress: false }, {}, false), false, 'the route opts out');
  assert.equal(mayCompressReply(session, { compress: true }, true), true, 'the table opts in');
  assert.equal(mayCompressReply(plain, { compress: false }, false), false, 'the table opts out');
  assert.equal(mayCompressReply({ ...plain, compress: true }, { compress: false }, false), true);
  assert.equal(mayCompressReply({ ...session, compress: false }, { compress: true }, false), false);
});

test('a compressed variant never carries the identity ETag', () => {
  assert.equal(variantEtag('"v1"', 'br'), '"v1-br"');
  assert.equal(variantEtag('W/"v1"', 'gzip'), 'W/"v1-gzip"');
  assert.equal(variantEtag('""', 'br'), '"-br"');
  assert.equal(variantEtag('v1', 'br'), undefined, 'not a tag');
  assert.equal(variantEtag('"a"b"', 'br'), undefined);
});

test('compress: br and gzip decode back to the bytes', async () => {
  const text = Buffer.from('{"entries":[' + '{"title":"hello"},'.repeat(200) + '{}]}');
  const br = await compress(text, 'br', LEVELS);
  const gz = await compress(text, 'gzip', LEVELS);
  assert.ok(br.length < text.length / 4 && gz.length < text.length / 4);
  assert.deepEqual(brotliDecompressSync(br), text);
  assert.deepEqual(gunzipSync(gz), text);
});

test('static variants: made once per version, bounded in bytes, a changed file made again', async (t) => {
  const dir = tempDir(t);
  const files = ['a', 'b', 'c'].map((n) => {
    const path = join(dir, `${n}.txt`);
    // Random-ish text, so that each compresses to a few KiB.
    writeFileSync(path, Array.from({ length: 2000 }, (_, i) => `${n}${(i * 7919) % 1000}`).join(' '));
    return path;
  });
  const one = (await new CompressedVariants(1 << 20, LEVELS).get(files[0]!, statSync(files[0]!), 'br'))!;
  // Room for two variants of about this size.
  const room = Math.floor(one.length * 2.5);
  const cache = new CompressedVariants(room, LEVELS, { maxFileBytes: room });

  const [x, y] = await Promise.all([
    cache.get(files[0]!, statSync(files[0]!), 'br'),
    cache.get(files[0]!, statSync(files[0]!), 'br'),
  ]);
  assert.equal(x, y, 'concurrent first requests share one compression');
  assert.deepEqual(x, one);
  assert.equal(await cache.get(files[0]!, statSync(files[0]!), 'br'), x, 'the cached bytes, not made again');
  assert.equal(cache.heldBytes, x.length);
  const b = (await cache.get(files[1]!, statSync(files[1]!), 'br'))!;
  assert.equal(cache.heldBytes, x.length + b.length);
  // a was used last but one: c pushes it out, and a asked again is made anew.
  await cache.get(files[2]!, statSync(files[2]!), 'br');
  assert.ok(cache.heldBytes <= room, 'never more than cacheBytes');
  const again = await cache.get(files[0]!, statSync(files[0]!), 'br');
  assert.notEqual(again, x, 'the oldest went out');
  assert.deepEqual(again, x);

  // The default per-file limit is cacheBytes/8: a bigger variant is answered but not kept.
  const small = new CompressedVariants(one.length * 4, LEVELS);
  assert.equal(small.maxFileBytes, one.length / 2);
  assert.ok((await small.get(files[0]!, statSync(files[0]!), 'br')) !== undefined);
  assert.equal(small.heldBytes, 0);

  writeFileSync(files[0]!, 'changed '.repeat(500));
  const changed = await cache.get(files[0]!, statSync(files[0]!), 'br');
  assert.equal(brotliDecompressSync(changed!).toString(), 'changed '.repeat(500));

  // A stat that no longer describes the file: nothing to answer from (the caller goes uncompressed).
  const stale = statSync(files[1]!);
  writeFileSync(files[1]!, 'other');
  assert.equal(await new CompressedVariants(1 << 20, LEVELS).get(files[1]!, stale, 'br'), undefined);

  // Too many compressions at once: the rest get nothing rather than waiting.
  const busy = new CompressedVariants(1 << 20, LEVELS, { maxPending: 1 });
  const [first, second] = await Promise.all([
    busy.get(files[2]!, statSync(files[2]!), 'br'),
    busy.get(files[2]!, statSync(files[2]!), 'gzip'),
  ]);
  assert.ok(first !== undefined);
  assert.equal(second, undefined);
});
