import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestValidator } from '../../broker/validator.js';
import { compileRoutes, loadRoutes } from '../../config/routes.js';
import { makeEnvelope } from '../helpers/envelope.js';
import { exampleRoutesFile } from '../helpers/files.js';

const routes = loadRoutes(exampleRoutesFile);
/** A 64 KiB body of nothing but unknown keys. */
const unknownKeys = Object.fromEntries(Array.from({ length: 6000 }, (_, i) => [`k${i}`, i]));

test('a request validator stops at its first error, however many the body holds', () => {
  const body = compileRoutes(exampleRoutesFile, routes).get('notes.create')!.body;
  assert.ok(JSON.stringify(unknownKeys).length > 64 * 1024);
  assert.equal(body({ title: 't', ...unknownKeys }), false);
  assert.equal(body.errors?.length, 1, `${body.errors?.length} errors computed`);
});

test('a refusal names a bounded number of problems, each field clipped', () => {
  const validator = new RequestValidator(exampleRoutesFile, routes);
  const long = 'x'.repeat(10_000);
  const check = validator.validate(
    makeEnvelope({
      route: 'notes.create',
      method: 'POST',
      path: '/notes',
      query: { [long]: '1' },
      body: { title: 't', [long]: 1, ...unknownKeys },
    }),
  );
  assert.equal(check.ok, false);
  if (check.ok) return;
  assert.ok(check.problems.length <= 3, `${check.problems.length} problems`);
  for (const p of check.problems) assert.ok(p.field.length < 300, `${p.field.length} chars`);
});
