import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadRoutes } from '../../config/routes.js';
import { Router } from '../../gateway/router.js';
import { exampleRoutesFile } from '../helpers/files.js';

const router = new Router(loadRoutes(exampleRoutesFile));

test('static and parameterised paths match their routes', () => {
  const list = router.match('GET', '/notes');
  assert.equal(list.kind === 'found' && list.route.name, 'notes.list');
  const get = router.match('GET', '/notes/abc%20def');
  assert.ok(get.kind === 'found');
  assert.equal(get.route.name, 'notes.get');
  assert.deepEqual(get.params, { id: 'abc def' });
  const del = router.match('DELETE', '/notes/x');
  assert.equal(del.kind === 'found' && del.route.name, 'notes.delete');
});

test('unknown paths are not found; known paths with another method say which are allowed', () => {
  assert.equal(router.match('GET', '/nothing').kind, 'not-found');
  assert.equal(router.match('GET', '/notes/a/b').kind, 'not-found');
  assert.equal(router.match('GET', '/notes/').kind, 'not-found');
  const m = router.match('PUT', '/notes');
  assert.ok(m.kind === 'method-not-allowed');
  assert.deepEqual([...m.allow].sort(), ['GET', 'POST']);
});

test('malformed percent-encoding in a parameter is a bad path', () => {
  assert.equal(router.match('GET', '/notes/%E0%A4%A').kind, 'bad-path');
});
