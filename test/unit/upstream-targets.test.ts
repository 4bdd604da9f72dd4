// An upstream's config is checked at start: plain http only to loopback or private addresses,
// https only with a CA file; route globs; and every route served by exactly one of handler or upstream.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateConfig } from '../../config/load.js';
import { notesApplication } from '../../core/app/notes/index.js';
import { checkHandlers, NO_APPLICATION } from '../../core/load-application.js';
import { checkUpstreams, globToRegExp, isLocalHost } from '../../core/upstream/targets.js';
import { upstreamRequest } from '../../core/upstream/request.js';
import { isNonstopError } from '../../lib/errors.js';
import { makeEnvelope } from '../helpers/envelope.js';

const upstream = (url: string, extra: Record<string, unknown> = {}) => ({
  url,
  routes: ['site.*'],
  timeoutMs: 1000,
  maxResponseBytes: 4096,
  ...extra,
});
const configError = (pattern: RegExp) => (err: unknown) =>
  isNonstopError(err) && err.code === 'NONSTOP_ERR_CONFIG_INVALID' && pattern.test(err.message);

test('http:// is accepted to loopback and private addresses only', () => {
  for (const host of [
    '127.0.0.1',
    'localhost',
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    '[::1]',
    '[fd00::1]',
  ]) {
    assert.equal(checkUpstreams([upstream(`http://${host}:3000`)]).length, 1, host);
  }
  for (const host of ['198.18.0.1', '8.8.8.8', '172.32.0.1', 'example.com', '[2001:db8::1]']) {
    assert.throws(
      () => checkUpstreams([upstream(`http://${host}:3000`)]),
      configError(/upstreams\[0\]\.url.*https/),
      host,
    );
  }
  assert.equal(isLocalHost('127.8.9.1'), true);
});

test('https:// needs a readable CA file; credentials and queries are refused', () => {
  assert.throws(
    () => checkUpstreams([upstream('https://app.internal')]),
    configError(/"upstreams\[0\]\.ca" is required/),
  );
  assert.throws(
    () => checkUpstreams([upstream('https://app.internal', { ca: '/nonexistent/ca.crt' })]),
    configError(/cannot be read.*ENOENT/),
  );
  assert.throws(() => checkUpstreams([upstream('http://u:p@127.0.0.1')]), configError(/credentials/));
  assert.throws(() => checkUpstreams([upstream('http://127.0.0.1/?a=1')]), configError(/query/));
});

test('the core config schema accepts upstreams with defaults and application null', () => {
  const config = validateConfig('core', 'core.json', {
    kind: 'core',
    routes: '/r.json',
    tls: { ca: '/ca', cert: '/c', key: '/k' },
    application: null,
    upstreams: [{ url: 'http://127.0.0.1:3000', routes: ['site.*'] }],
  });
  assert.equal(config.application, null);
  assert.equal(config.upstreams[0]?.timeoutMs, 10000);
  assert.equal(config.upstreams[0]?.maxResponseBytes, 2 * 1024 * 1024);
  assert.throws(
    () =>
      validateConfig('core', 'core.json', {
        kind: 'core',
        routes: '/r.json',
        tls: { ca: '/ca', cert: '/c', key: '/k' },
        upstreams: [{ url: 'ftp://x', routes: [] }],
      }),
    /upstreams/,
  );
});

test('route globs: * is any run of characters, the rest literal', () => {
  assert.ok(globToRegExp('site.*').test('site.home'));
  assert.ok(!globToRegExp('site.*').test('siteXhome'));
  assert.ok(globToRegExp('*').test('notes.create'));
  assert.ok(!globToRegExp('notes.get').test('notes.gets'));
});

test('every route has a handler or an upstream, not both, and every upstream serves a route', () => {
  const routes = {
    kind: 'routes' as const,
    routes: ['notes.create', 'site.home'].map((name) => ({ name, method: 'GET' as const, path: `/${name}` })),
  } as unknown as Parameters<typeof checkHandlers>[1];
  const site = checkUpstreams([upstream('http://127.0.0.1:1')]);
  const onlyNotes = {
    ...notesApplication,
    handlers: { 'notes.create': notesApplication.handlers['notes.create']! },
  };
  assert.doesNotThrow(() => checkHandlers(onlyNotes, routes, site));
  assert.throws(() => checkHandlers(onlyNotes, routes), /no handler for route\(s\) site\.home/);
  const all = checkUpstreams([upstream('http://127.0.0.1:1', { routes: ['*'] })]);
  assert.throws(
    () => checkHandlers(onlyNotes, routes, all),
    /notes\.create have a handler and match an upstream/,
  );
  assert.doesNotThrow(() => checkHandlers(NO_APPLICATION, routes, all));
  const idle = checkUpstreams([
    upstream('http://127.0.0.1:1', { routes: ['*'] }),
    upstream('http://127.0.0.1:2', { routes: ['shop.*'] }),
  ]);
  assert.throws(() => checkHandlers(NO_APPLICATION, routes, idle), /upstreams\[1\]\.routes matches no route/);
});

test('the request: our headers override forwarded ones, hop-by-hop and host are not passed on', () => {
  const envelope = makeEnvelope({
    route: 'site.home',
    method: 'GET',
    path: '/a b',
    headers: {
      'x-request-id': 'forged',
      host: 'evil',
      'proxy-authorization': 'x',
      te: 'trailers',
      'accept-language': 'de',
    },
  });
  const r = upstreamRequest(envelope);
  assert.equal(r.headers['x-request-id'], envelope.id);
  assert.equal(r.headers['accept-language'], 'de');
  for (const h of ['host', 'proxy-authorization', 'te', 'content-type'])
    assert.equal(r.headers[h], undefined, h);
  assert.equal(r.body, undefined);
});
