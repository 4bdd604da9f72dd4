import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRoutes } from '../../config/routes.js';
import { isNonstopError } from '../../lib/errors.js';

const strictBody = {
  type: 'object',
  additionalProperties: false,
  properties: { title: { type: 'string', maxLength: 10 } },
};

function table(body: unknown, extra: Record<string, unknown> = {}) {
  return {
    kind: 'routes',
    routes: [{ name: 'things.create', method: 'POST', path: '/things', schema: { body }, ...extra }],
  };
}

function refusal(doc: unknown): string {
  try {
    parseRoutes('routes.json', doc);
  } catch (err) {
    assert.ok(isNonstopError(err));
    return err.message;
  }
  assert.fail('expected the route table to be refused');
}

test('a strict schema is accepted', () => {
  assert.equal(parseRoutes('routes.json', table(strictBody)).routes.length, 1);
});

test('a schema that allows unknown properties is refused, also when nested', () => {
  const open = { ...strictBody, additionalProperties: true };
  assert.match(
    refusal(table(open)),
    /routes\[0\]\.schema\.body" objects must set "additionalProperties": false/,
  );
  const nested = {
    ...strictBody,
    properties: { inner: { type: 'object', properties: { a: { type: 'integer' } } } },
  };
  assert.match(
    refusal(table(nested)),
    /schema\.body\.properties\.inner" objects must set "additionalProperties"/,
  );
});

test('unbounded strings and arrays, and untyped values, are refused', () => {
  const s = { ...strictBody, properties: { title: { type: 'string' } } };
  assert.match(refusal(table(s)), /properties\.title" strings must set "maxLength"/);
  const a = {
    ...strictBody,
    properties: { tags: { type: 'array', items: { type: 'string', maxLength: 3 } } },
  };
  assert.match(refusal(table(a)), /properties\.tags" arrays must set "maxItems"/);
  const u = { ...strictBody, properties: { anything: {} } };
  assert.match(refusal(table(u)), /properties\.anything" must declare "type"/);
});

test('path parameters must match the params schema, and GET takes no body', () => {
  const doc = {
    kind: 'routes',
    routes: [{ name: 'things.get', method: 'GET', path: '/things/:id', schema: { body: strictBody } }],
  };
  const msg = refusal(doc);
  assert.match(msg, /schema\.params" is required because the path has parameters \(id\)/);
  assert.match(msg, /schema\.body" GET requests carry no body/);
});

test('duplicate names and shadowing paths are refused', () => {
  const params = {
    type: 'object',
    additionalProperties: false,
    properties: { id: { type: 'string', maxLength: 5 } },
  };
  const params2 = { ...params, properties: { key: { type: 'string', maxLength: 5 } } };
  const doc = {
    kind: 'routes',
    routes: [
      { name: 'a.get', method: 'GET', path: '/a/:id', schema: { params } },
      { name: 'a.get', method: 'GET', path: '/a/:key', schema: { params: params2 } },
    ],
  };
  const msg = refusal(doc);
  assert.match(msg, /"a\.get" is used by another route/);
  assert.match(msg, /same method and path shape as route "a\.get"/);
});

test('a schema Ajv cannot compile strictly is refused at load', () => {
  const bad = { ...strictBody, properties: { title: { type: 'string', maxLength: 10, colour: 'red' } } };
  assert.match(refusal(table(bad)), /routes\[0\]\.schema" strict mode: unknown keyword: "colour"/);
});
