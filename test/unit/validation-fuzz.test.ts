// Property test of every route's validation: values generated from the route's own schemas
// pass; each mutation that breaks the schema in a known way is refused. Seeded (print and
// set NONSTOP_FUZZ_SEED to replay).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestValidator } from '../../broker/validator.js';
import { loadRoutes } from '../../config/routes.js';
import type { RouteDefinition } from '../../config/schemas/routes.js';
import type { Envelope } from '../../lib/envelope.js';
import { exampleRoutesFile } from '../helpers/files.js';
import { generate, mutations, Rng } from '../helpers/schema-gen.js';

const SEED = Number(process.env.NONSTOP_FUZZ_SEED ?? Date.now() % 1_000_000);
const RUNS = 200;
const routes = loadRoutes(exampleRoutesFile);
const validator = new RequestValidator(exampleRoutesFile, routes);

function envelope(
  route: RouteDefinition,
  parts: { params?: unknown; query?: unknown; body?: unknown },
): Envelope {
  const strings = (v: unknown) =>
    Object.fromEntries(Object.entries((v ?? {}) as Record<string, unknown>).map(([k, x]) => [k, String(x)]));
  return {
    v: 1,
    id: '00000000-0000-4000-8000-000000000000',
    route: route.name,
    method: route.method,
    path: route.path,
    // Params and query travel as strings, as the gateway sends them.
    params: strings(parts.params),
    query: strings(parts.query),
    headers: {},
    body: parts.body ?? null,
    clientIp: '198.18.0.1',
    gatewayId: 'gw1',
    replyTo: 'fuzz',
    receivedAt: 0,
    deadline: 1,
  };
}

test(`every route accepts values generated from its schemas and refuses every mutation (seed ${SEED})`, () => {
  const rng = new Rng(SEED);
  let accepted = 0;
  let refused = 0;
  for (const route of routes.routes) {
    for (let run = 0; run < RUNS; run++) {
      const parts: Record<string, unknown> = {};
      for (const part of ['params', 'query', 'body'] as const) {
        const schema = route.schema[part];
        if (schema !== undefined) parts[part] = generate(schema, rng);
      }
      const valid = validator.validate(envelope(route, structuredClone(parts)));
      assert.ok(
        valid.ok,
        `${route.name} refused a generated value ${JSON.stringify(parts)}: ${JSON.stringify(valid)}`,
      );
      accepted++;

      const body = route.schema.body;
      if (body === undefined) continue;
      for (const m of mutations(body, parts.body as Record<string, unknown>, rng)) {
        const result = validator.validate(envelope(route, { ...structuredClone(parts), body: m.value }));
        assert.equal(result.ok, false, `${route.name}: "${m.name}" was accepted: ${JSON.stringify(m.value)}`);
        refused++;
      }
    }
  }
  assert.ok(accepted >= RUNS * routes.routes.length);
  assert.ok(refused > RUNS * 10, `only ${refused} mutations were tried`);
});

test('params and query that break their schemas are refused (seed-independent cases)', () => {
  const get = routes.routes.find((r) => r.name === 'notes.get')!;
  const list = routes.routes.find((r) => r.name === 'notes.list')!;
  const bad = [
    envelope(get, { params: { id: 'not-a-uuid' } }),
    envelope(get, { params: { id: '00000000-0000-4000-8000-000000000000', extra: 'x' } }),
    envelope(list, { query: { limit: '0' } }),
    envelope(list, { query: { limit: '101' } }),
    envelope(list, { query: { limit: 'ten' } }),
    envelope(list, { query: { tag: 'UPPER' } }),
    envelope(list, { query: { unknown: '1' } }),
    envelope(get, { params: { id: '00000000-0000-4000-8000-000000000000' }, body: { a: 1 } }),
  ];
  for (const e of bad) assert.equal(validator.validate(e).ok, false, JSON.stringify(e));
});
