import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLOCK_SKEW_MS, EnvelopeBounds, maxJobDataBytes } from '../../broker/envelope-bounds.js';
import type { GatewayLink } from '../../config/schemas/broker.js';
import { parseRoutes } from '../../config/routes.js';
import { makeEnvelope } from '../helpers/envelope.js';

const routes = parseRoutes('routes.json', {
  kind: 'routes',
  routes: [
    { name: 'notes.create', method: 'POST', path: '/notes', schema: {} },
    { name: 'reports.build', method: 'POST', path: '/reports', timeoutMs: 60_000, schema: {} },
    {
      name: 'site.form',
      method: 'POST',
      path: '/site',
      bodyTypes: ['form'],
      cookies: ['session'],
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { a: { type: 'string', maxLength: 9 } },
        },
      },
    },
  ],
});
const gateway: GatewayLink = {
  id: 'gw1',
  replyTimeoutMs: 10_000,
  maxBodyBytes: 65_536,
  forwardHeaders: ['accept-language', 'user-agent'],
};
const bounds = new EnvelopeBounds(routes, gateway);
const NOW = 1_800_000_000_000;
const at = (over: Parameters<typeof makeEnvelope>[0]) =>
  bounds.check(makeEnvelope({ receivedAt: NOW, deadline: NOW + 5000, ...over }), NOW);
const create = { route: 'notes.create', method: 'POST', path: '/notes' } as const;

test('an envelope as the gateway builds it is within bounds', () => {
  assert.equal(at({ ...create, receivedAt: NOW, deadline: NOW + 10_000 }), undefined);
  assert.equal(at({ ...create, receivedAt: NOW - 9000, deadline: NOW + 1000 }), undefined);
  assert.equal(
    at({ ...create, receivedAt: NOW + CLOCK_SKEW_MS, deadline: NOW + CLOCK_SKEW_MS + 10_000 }),
    undefined,
  );
  assert.equal(at({ ...create, headers: { 'user-agent': 'ua', 'accept-language': 'en' } }), undefined);
  // A route's own timeout replaces the gateway's.
  const reports = { route: 'reports.build', method: 'POST', path: '/reports' } as const;
  assert.equal(at({ ...reports, receivedAt: NOW, deadline: NOW + 60_000 }), undefined);
  assert.match(at({ ...reports, receivedAt: NOW, deadline: NOW + 60_001 }) ?? '', /more than the 60000 ms/);
});

test('deadlines and receipt times no gateway would set are out of bounds', () => {
  assert.match(
    at({ ...create, receivedAt: NOW, deadline: NOW + 20 * 86_400_000 }) ?? '',
    /more than the 10000 ms/,
  );
  assert.match(at({ ...create, receivedAt: NOW, deadline: NOW + 10_001 }) ?? '', /more than the 10000 ms/);
  assert.match(at({ ...create, receivedAt: 0, deadline: NOW + 5000 }) ?? '', /after receivedAt/);
  assert.match(at({ ...create, receivedAt: NOW, deadline: NOW - 1 }) ?? '', /before receivedAt/);
  assert.match(
    at({ ...create, receivedAt: NOW + CLOCK_SKEW_MS + 1, deadline: NOW + CLOCK_SKEW_MS + 1001 }) ?? '',
    /in the future/,
  );
});

test('only the headers this gateway forwards, and only the cookies the route takes', () => {
  for (const name of ['authorization', 'x-forwarded-for', 'host']) {
    assert.match(at({ ...create, headers: { [name]: 'v' } }) ?? '', new RegExp(`"${name}"`));
  }
  assert.match(
    at({ ...create, headers: { cookie: 'session=1' } }) ?? '',
    /cookie "session", which route notes.create/,
  );
  const form = { route: 'site.form', method: 'POST', path: '/site' } as const;
  assert.equal(at({ ...form, headers: { cookie: 'session=1' } }), undefined);
  assert.match(at({ ...form, headers: { cookie: 'session=1; other=2' } }) ?? '', /cookie "other"/);
  const forwarding = new EnvelopeBounds(routes, { ...gateway, forwardHeaders: ['authorization'] });
  assert.equal(
    forwarding.check(
      makeEnvelope({ ...create, headers: { authorization: 'x' }, deadline: Date.now() + 5000 }),
      Date.now(),
    ),
    undefined,
  );
});

test('job data is bounded by the body limit the gateway enforces', () => {
  assert.equal(maxJobDataBytes(gateway), 3 * 65_536 + 512 * 1024);
  assert.ok(
    maxJobDataBytes({ ...gateway, maxBodyBytes: 0 }) > 64 * 1024,
    'room for the rest of the envelope',
  );
});

test('a body only in a form the route takes', () => {
  const form = { route: 'site.form', method: 'POST', path: '/site' } as const;
  assert.equal(at({ ...form, body: { a: '1' }, bodyType: 'form' }), undefined);
  assert.match(at({ ...form, body: { a: '1' } }) ?? '', /a json body, which route site.form does not take/);
  assert.match(at({ ...create, body: 'x', bodyType: 'text' }) ?? '', /a text body/);
});
