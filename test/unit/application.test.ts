import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { notesApplication } from '../../core/app/notes/index.js';
import type { Application } from '../../core/application.js';
import { checkHandlers, loadApplication } from '../../core/load-application.js';
import { isNonstopError } from '../../lib/errors.js';
import { exampleRoutes } from '../helpers/core.js';

const invalid = (pattern: RegExp) => (err: unknown) =>
  isNonstopError(err) && err.code === 'NONSTOP_ERR_APPLICATION_INVALID' && pattern.test(err.message);

test('the notes application has exactly one handler per example route', () => {
  assert.doesNotThrow(() => checkHandlers(notesApplication, exampleRoutes()));
});

test('a route without a handler fails at start, naming every missing one', () => {
  const { 'notes.delete': _delete, 'notes.get': _get, ...handlers } = notesApplication.handlers;
  const app: Application = { ...notesApplication, handlers };
  assert.throws(
    () => checkHandlers(app, exampleRoutes()),
    invalid(/no handler for route\(s\) notes\.get, notes\.delete/),
  );
});

test('a handler for a route not in the table is an error too', () => {
  const app: Application = {
    ...notesApplication,
    handlers: { ...notesApplication.handlers, 'notes.archive': () => Promise.resolve({ status: 200 }) },
  };
  assert.throws(() => checkHandlers(app, exampleRoutes()), invalid(/unknown route\(s\) notes\.archive/));
});

test('loadApplication knows "notes" and imports a module path', async (t) => {
  assert.equal(await loadApplication('notes'), notesApplication);
  const dir = await mkdtemp(join(tmpdir(), 'nonstop-app-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    join(dir, 'hello.mjs'),
    `export default { name: 'hello', migrations: [], handlers: { 'hello.get': async () => ({ status: 200, body: 'hi' }) } };\n`,
  );
  const app = await loadApplication('hello.mjs', dir);
  assert.equal(app.name, 'hello');
  assert.deepEqual(Object.keys(app.handlers), ['hello.get']);
});

test('loadApplication names the problem with a module that is missing or not an application', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'nonstop-app-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await assert.rejects(loadApplication('missing.mjs', dir), invalid(/missing\.mjs cannot be imported/));
  await writeFile(
    join(dir, 'bad.mjs'),
    `export default { name: 'bad', migrations: [{ version: 1 }], handlers: { x: 1 } };\n`,
  );
  await assert.rejects(
    loadApplication('bad.mjs', dir),
    invalid(/migrations\[0\].*handlers\.x" must be a function/),
  );
});
