import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RouteDefinition } from '../../config/schemas/routes.js';
import {
  BUDGET_HEADER,
  checkExecuteHeaders,
  parseBudget,
  parseExecuteBody,
  withBudget,
} from '../../lib/core-protocol.js';
import { toStoredResponse } from '../../core/response.js';
import { isNonstopError } from '../../lib/errors.js';
import { exampleRoutes } from '../helpers/core.js';
import { keyedId } from '../helpers/idempotency.js';
import { makeEnvelope } from '../helpers/envelope.js';

const routes = new Map<string, RouteDefinition>(exampleRoutes().routes.map((r) => [r.name, r]));
const failsWith = (code: string, status: number) => (err: unknown) =>
  isNonstopError(err) && err.code === code && err.status === status;

test('an execute request needs JSON and an idempotency key', () => {
  assert.equal(
    checkExecuteHeaders({ 'content-type': 'application/json; charset=utf-8', 'idempotency-key': 'k' }),
    'k',
  );
  assert.throws(
    () => checkExecuteHeaders({ 'content-type': 'text/plain', 'idempotency-key': 'k' }),
    failsWith('NONSTOP_ERR_BAD_REQUEST', 400),
  );
  assert.throws(
    () => checkExecuteHeaders({ 'content-type': 'application/json' }),
    failsWith('NONSTOP_ERR_BAD_REQUEST', 400),
  );
});

test('the execute body must be a valid envelope whose id is the idempotency key', () => {
  const envelope = makeEnvelope({ route: 'notes.list', method: 'GET', path: '/notes' });
  const raw = Buffer.from(JSON.stringify(envelope));
  assert.deepEqual(parseExecuteBody(raw, envelope.id, routes), envelope);
  assert.throws(
    () => parseExecuteBody(Buffer.from('{"v":1,'), envelope.id, routes),
    failsWith('NONSTOP_ERR_MALFORMED_JSON', 400),
  );
  assert.throws(
    () => parseExecuteBody(raw, '00000000-0000-4000-8000-000000000000', routes),
    failsWith('NONSTOP_ERR_BAD_REQUEST', 400),
  );
  const noDeadline = Buffer.from(JSON.stringify({ ...envelope, deadline: undefined }));
  assert.throws(
    () => parseExecuteBody(noDeadline, envelope.id, routes),
    failsWith('NONSTOP_ERR_BAD_REQUEST', 400),
  );
});

test('the envelope route must be in the table, with its method', () => {
  const unknown = makeEnvelope({ route: 'notes.archive', method: 'POST', path: '/notes/archive' });
  assert.throws(
    () => parseExecuteBody(Buffer.from(JSON.stringify(unknown)), unknown.id, routes),
    failsWith('NONSTOP_ERR_ROUTE_UNKNOWN', 404),
  );
  const wrongMethod = makeEnvelope({ route: 'notes.list', method: 'POST', path: '/notes' });
  assert.throws(
    () => parseExecuteBody(Buffer.from(JSON.stringify(wrongMethod)), wrongMethod.id, routes),
    failsWith('NONSTOP_ERR_BAD_REQUEST', 400),
  );
});

test('a handler response is normalised: lowercase headers, JSON body, null for none', () => {
  assert.deepEqual(toStoredResponse({ status: 204 }), { status: 204, headers: {}, body: null });
  assert.deepEqual(
    toStoredResponse({
      status: 200,
      headers: { 'X-Thing': 'a' },
      body: { at: new Date(0), gone: undefined },
    }),
    {
      status: 200,
      headers: { 'x-thing': 'a' },
      body: { at: '1970-01-01T00:00:00.000Z' },
    },
  );
  assert.throws(() => toStoredResponse({ status: 700 }), /status 700/);
  assert.throws(() => toStoredResponse({ status: 200, headers: { 'bad header': 'x' } }), /invalid header/);
  assert.throws(
    () => toStoredResponse({ status: 200, headers: { ok: 'a\r\nset-cookie: x' } }),
    /invalid header/,
  );
  assert.throws(() => toStoredResponse(undefined), /no response/);
});

test('an envelope marked idempotent must carry a key-derived (version 8) id, and only then', () => {
  const base = { route: 'notes.list', method: 'GET', path: '/notes' } as const;
  const keyed = makeEnvelope({ ...base, id: keyedId('k'), idempotent: true });
  assert.deepEqual(parseExecuteBody(Buffer.from(JSON.stringify(keyed)), keyed.id, routes), keyed);
  for (const bad of [
    makeEnvelope({ ...base, idempotent: true }),
    makeEnvelope({ ...base, id: keyedId('k') }),
    makeEnvelope({ ...base, id: keyedId('k'), idempotent: false }),
  ]) {
    assert.throws(
      () => parseExecuteBody(Buffer.from(JSON.stringify(bad)), bad.id, routes),
      failsWith('NONSTOP_ERR_BAD_REQUEST', 400),
    );
  }
});

test("the budget header puts the deadline in the core's clock, never past the gateway's window", () => {
  assert.equal(parseBudget({}), undefined);
  assert.equal(parseBudget({ [BUDGET_HEADER]: '2500' }), 2500);
  for (const bad of ['0', '-1', '1.5', '600001', 'soon', ''])
    assert.throws(
      () => parseBudget({ [BUDGET_HEADER]: bad }),
      failsWith('NONSTOP_ERR_BAD_REQUEST', 400),
      bad,
    );
  // The queue's clock is 20 s behind the core's: the envelope looks long expired there.
  const envelope = makeEnvelope({
    route: 'notes.list',
    method: 'GET',
    path: '/notes',
    receivedAt: 1_000_000,
    deadline: 1_030_000,
  });
  const coreNow = 1_000_000 + 20_000 + 5000;
  assert.deepEqual(withBudget(envelope, 25_000, coreNow), { ...envelope, deadline: coreNow + 25_000 });
  // A budget longer than the window the gateway gave is cut to the window.
  assert.equal(withBudget(envelope, 60_000, coreNow).deadline, coreNow + 30_000);
  // No header (a broker of an earlier version): the envelope's own deadline.
  assert.equal(withBudget(envelope, undefined, coreNow), envelope);
});
