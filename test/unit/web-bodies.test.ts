// Request bodies other than JSON: the gateway's decoders, the route table's checks on the body
// types a route takes, and the broker's validator coercing form fields to their declared types.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestValidator } from '../../broker/validator.js';
import { parseRoutes } from '../../config/routes.js';
import { decodeForm, decodeMultipart, mediaTypeOf } from '../../gateway/body-decoders.js';
import { makeEnvelope } from '../helpers/envelope.js';

const LIMITS = { maxParts: 4, maxFileBytes: 64, maxFieldBytes: 64 };
const crlf = (s: string) => Buffer.from(s.replace(/\n/g, '\r\n'));

test('content types name their body type and parameters', () => {
  assert.deepEqual(mediaTypeOf('Multipart/Form-Data; boundary="a;b"'), {
    kind: 'multipart',
    params: { boundary: 'a;b' },
  });
  assert.equal(mediaTypeOf('application/problem+json')?.kind, 'json');
  assert.equal(mediaTypeOf('text/html'), undefined);
  assert.equal(mediaTypeOf(undefined), undefined);
});

test('a form: repeated names become arrays, + is a space, and it is bounded', () => {
  const form = mediaTypeOf('application/x-www-form-urlencoded')!;
  assert.deepEqual(decodeForm(Buffer.from('a=1&a=2&a=3&b=x+y&c&=&&'), form), {
    ok: false,
    error: 'Form field names must be 1 to 128 characters',
  });
  assert.deepEqual(decodeForm(Buffer.from('a=1&a=2&a=3&b=x+y&c'), form), {
    ok: true,
    value: { a: ['1', '2', '3'], b: 'x y', c: '' },
  });
  const many = Array.from({ length: 257 }, (_, i) => `f${i}=1`).join('&');
  assert.match((decodeForm(Buffer.from(many), form) as { error: string }).error, /more than 256 fields/);
  const proto = decodeForm(Buffer.from('__proto__=x&constructor=y'), form);
  assert.deepEqual(proto, { ok: true, value: JSON.parse('{"__proto__":"x","constructor":"y"}') as unknown });
  assert.equal(({} as Record<string, unknown>).x, undefined, 'no prototype was touched');
});

test('multipart: a preamble, quoted parameters with ";", padding, and an epilogue are read as RFC 7578 says', () => {
  const type = mediaTypeOf('multipart/form-data; boundary=B')!;
  const body = crlf(
    'preamble to ignore\n--B  \nContent-Disposition: form-data; name="a;b"\n\nvalue\n' +
      '--B\nContent-Disposition: form-data; name="f"; filename="x%22y.txt"\nContent-Type: Text/Plain; charset=utf-8\n\nhi\n' +
      '--B--\nepilogue',
  );
  assert.deepEqual(decodeMultipart(body, type, LIMITS), {
    ok: true,
    value: { 'a;b': 'value', f: { filename: 'x"y.txt', type: 'text/plain', size: 2, base64: 'aGk=' } },
  });
  const binary = Buffer.concat([
    crlf('--B\nContent-Disposition: form-data; name="bin"; filename="b"\n\n'),
    Buffer.from([13, 10, 45, 45, 66, 0]),
    crlf('\n--B--\n'),
  ]);
  // "\r\n--B" ends a part wherever it appears (RFC 2046): the sender must pick a boundary not in
  // the data. What follows it here is not CRLF, so the body is malformed, not misread.
  assert.equal(decodeMultipart(binary, type, LIMITS).ok, false);
});

test('the route table: text takes a string body alone; other body types need a schema', () => {
  const table = (route: Record<string, unknown>) => () =>
    parseRoutes('routes.json', {
      kind: 'routes',
      routes: [{ name: 'r', method: 'POST', path: '/r', ...route }],
    });
  assert.throws(
    table({ bodyTypes: ['text', 'form'], schema: { body: { type: 'string', maxLength: 9 } } }),
    /cannot be mixed/,
  );
  assert.throws(table({ bodyTypes: ['form'] }), /form bodies need a schema.body/);
  assert.throws(
    table({ bodyTypes: ['text'], schema: { body: { type: 'object', additionalProperties: false } } }),
    /must have "type": "string"/,
  );
  assert.doesNotThrow(table({ bodyTypes: ['text'], schema: { body: { type: 'string', maxLength: 9 } } }));
  assert.throws(table({ cors: { origins: ['ftp://x'] }, schema: {} }), /cors/);
  assert.throws(
    table({ cors: { origins: ['*'], credentials: true }, schema: {} }),
    /cannot go with "credentials": true/,
  );
});

test("the broker coerces a form's fields to their declared types, and a JSON body not", () => {
  const routes = parseRoutes('routes.json', {
    kind: 'routes',
    routes: [
      {
        name: 'order',
        method: 'POST',
        path: '/order',
        bodyTypes: ['form', 'json'],
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['count'],
            properties: { count: { type: 'integer', maximum: 9 }, gift: { type: 'boolean' } },
          },
        },
      },
    ],
  });
  const validator = new RequestValidator('routes.json', routes);
  const envelope = (body: unknown, bodyType?: 'form') =>
    makeEnvelope({ route: 'order', method: 'POST', path: '/order', body, ...(bodyType ? { bodyType } : {}) });
  const form = envelope({ count: '3', gift: 'true' }, 'form');
  assert.deepEqual(validator.validate(form), { ok: true });
  assert.deepEqual(form.body, { count: 3, gift: true }, 'the core gets the declared types');
  assert.equal(validator.validate(envelope({ count: '3' })).ok, false, 'JSON is typed by its sender');
  assert.equal(validator.validate(envelope({ count: 'three' }, 'form')).ok, false);
});
