// The validation fuzz through the whole request path: requests generated from every route's
// schemas (valid) and their mutations (invalid) go client → gateway → Redis → broker → core,
// and the core's request table must hold exactly the valid ones. test/unit/validation-fuzz
// checks the validator alone; this proves nothing between it and the core lets one through.
// Seeded like the unit test (NONSTOP_FUZZ_SEED replays a run).
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { describe, test } from 'node:test';
import { loadRoutes } from '../../config/routes.js';
import type { RouteDefinition } from '../../config/schemas/routes.js';
import { startCore } from '../../core/server.js';
import { brokerConfigDoc, startTestBroker } from '../helpers/broker.js';
import { testCoreConfig } from '../helpers/core.js';
import { exampleRoutesFile } from '../helpers/files.js';
import { startTestGateway, untilReady } from '../helpers/gateway.js';
import { captureLogger } from '../helpers/log.js';
import { sql, useTestSchema } from '../helpers/pg.js';
import { usePki } from '../helpers/pki.js';
import { testRedis } from '../helpers/redis.js';
import { generate, mutations, Rng, type Schema } from '../helpers/schema-gen.js';

const SEED = Number(process.env.NONSTOP_FUZZ_SEED ?? Date.now() % 1_000_000);
/** Valid requests generated per route; each brings its mutations along. */
const PER_ROUTE = 12;
const routes = loadRoutes(exampleRoutesFile);

interface Case {
  readonly route: string;
  readonly what: string;
  readonly valid: boolean;
  readonly method: string;
  readonly path: string;
  readonly body?: string;
}

/** A value that can travel in a path segment or a query string, as the gateway sends it. */
function asString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function pathFor(route: RouteDefinition, params: unknown): string | undefined {
  if (!isObject(params)) return undefined;
  let path = route.path;
  for (const [name, value] of Object.entries(params)) {
    const s = asString(value);
    // A parameter the path has no segment for cannot be sent.
    if (s === undefined || s === '' || !path.includes(`:${name}`)) return undefined;
    path = path.replace(`:${name}`, encodeURIComponent(s));
  }
  return path.includes('/:') ? undefined : path;
}

function queryFor(query: unknown): string | undefined {
  if (!isObject(query)) return undefined;
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    const s = asString(value);
    if (s === undefined) return undefined;
    search.append(name, s);
  }
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

/** Valid requests for every route, and every mutation of them an HTTP request can carry. */
function cases(rng: Rng): Case[] {
  const out: Case[] = [];
  for (const route of routes.routes) {
    const { params: paramSchema, query: querySchema, body: bodySchema } = route.schema;
    for (let i = 0; i < PER_ROUTE; i++) {
      const params = (paramSchema ? generate(paramSchema, rng) : {}) as Record<string, unknown>;
      const query = (querySchema ? generate(querySchema, rng) : {}) as Record<string, unknown>;
      const body = bodySchema ? (generate(bodySchema, rng) as Record<string, unknown>) : undefined;
      const request = (
        what: string,
        valid: boolean,
        p: Record<string, unknown>,
        q: Record<string, unknown>,
        b: unknown,
      ) => {
        const path = pathFor(route, p);
        const search = queryFor(q);
        if (path === undefined || search === undefined) return; // not expressible over HTTP
        out.push({
          route: route.name,
          what,
          valid,
          method: route.method,
          path: `${path}${search}`,
          ...(b === undefined ? {} : { body: JSON.stringify(b) }),
        });
      };
      request('generated', true, params, query, body);
      const mutate = (
        schema: Schema | undefined,
        valid: Record<string, unknown>,
        part: 'params' | 'query' | 'body',
      ) => {
        if (schema === undefined) return;
        for (const m of mutations(schema, valid, rng)) {
          const v = m.value as Record<string, unknown>;
          if (part === 'params') request(`params: ${m.name}`, false, v, query, body);
          else if (part === 'query') request(`query: ${m.name}`, false, params, v, body);
          else request(`body: ${m.name}`, false, params, query, m.value);
        }
      };
      mutate(paramSchema, params, 'params');
      mutate(querySchema, query, 'query');
      mutate(bodySchema, body ?? {}, 'body');
      // A body where the route takes none.
      if (bodySchema === undefined) request('body on a route without one', false, params, query, { a: 1 });
    }
  }
  // Query strings no generated object produces: prototype keys and repeated keys.
  for (const search of [
    '__proto__=1',
    '__proto__[polluted]=1',
    'constructor=1',
    'constructor[prototype][polluted]=1',
    'hasOwnProperty=1',
    'limit=1&limit=2',
    'tag=a&tag=b',
  ]) {
    out.push({
      route: 'notes.list',
      what: `query ${search}`,
      valid: false,
      method: 'GET',
      path: `/notes?${search}`,
    });
  }
  return out;
}

const agent = new Agent({ keepAlive: true, maxSockets: 8 });

/** One request (node:http: fetch refuses a body on GET, and sending one is a case here). */
function send(base: string, c: Case): Promise<{ status: number; text: string; requestId: string | null }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${c.path}`,
      {
        method: c.method,
        agent,
        headers:
          c.body === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(c.body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          const id = res.headers['x-request-id'];
          resolve({ status: res.statusCode ?? 0, text, requestId: typeof id === 'string' ? id : null });
        });
      },
    );
    req.on('error', reject);
    req.end(c.body);
  });
}

describe('validation fuzz through the whole request path', () => {
  const pki = usePki({ brokers: ['b1'] });

  test(`only generated valid requests reach the core, on every route (seed ${SEED})`, async (t) => {
    t.after(() => agent.destroy());
    const started = Date.now();
    const redis = testRedis(t);
    const { url: dbUrl, schema } = await useTestSchema(t);
    // The core's log names the request id of every execute request it receives, whatever its
    // outcome: that is what "reached the core" means here.
    const coreLog = captureLogger('info');
    const core = await startCore(testCoreConfig(pki(), { url: dbUrl, schema }), coreLog.logger);
    t.after(() => core.close());
    startTestBroker(t, brokerConfigDoc(pki(), { prefix: redis.prefix, corePort: core.address.port }));
    const { url } = await startTestGateway(t, {
      prefix: redis.prefix,
      overrides: { replyTimeoutMs: 20_000, limits: { ratePerSecond: 100_000, rateBurst: 100_000 } },
    });
    await untilReady(url);

    const all = cases(new Rng(SEED));
    const perRoute = new Map<string, { valid: number; invalid: number }>();
    for (const c of all) {
      const n = perRoute.get(c.route) ?? { valid: 0, invalid: 0 };
      n[c.valid ? 'valid' : 'invalid'] += 1;
      perRoute.set(c.route, n);
    }
    assert.deepEqual([...perRoute.keys()].sort(), routes.routes.map((r) => r.name).sort(), 'every route');
    for (const [route, n] of perRoute) {
      assert.ok(n.valid >= PER_ROUTE && n.invalid >= PER_ROUTE, `${route}: ${JSON.stringify(n)}`);
    }
    t.diagnostic(`${all.length} requests: ${JSON.stringify(Object.fromEntries(perRoute))}`);

    const sentValid = new Set<string>();
    const problems: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < all.length) {
          const c = all[next++]!;
          const res = await send(url, c);
          const { text } = res;
          const id = res.requestId;
          const label = `${c.route} ${c.what}: ${c.method} ${c.path.slice(0, 80)} ${c.body?.slice(0, 120) ?? ''}`;
          if (c.valid) {
            // Executed by the core: created, found, listed, or not found (a random id).
            // (The gateway's own refusals carry no request id: only answers from the core do.)
            if (![200, 201, 204, 404].includes(res.status) || id === null)
              problems.push(`${label} → ${res.status} ${text}`);
            else sentValid.add(id);
          } else if (res.status !== 400) {
            problems.push(`${label} → ${res.status} ${text.slice(0, 200)} (expected 400)`);
          }
        }
      }),
    );
    assert.deepEqual(problems, [], 'every valid request executed, every invalid one refused 400');

    const arrived = new Set(
      coreLog
        .lines()
        .map((l) => l.requestId)
        .filter((id): id is string => typeof id === 'string'),
    );
    assert.deepEqual(
      [...arrived].filter((id) => !sentValid.has(id)),
      [],
      'nothing but the valid requests reached the core',
    );
    assert.deepEqual(
      [...sentValid].filter((id) => !arrived.has(id)),
      [],
      'every valid request reached the core',
    );
    const rows = await sql(`SELECT id FROM ${schema}.nonstop_requests`);
    const recorded = rows.rows.map((r: { id: string }) => r.id);
    assert.deepEqual(
      recorded.filter((id) => !sentValid.has(id)),
      [],
      "the core's request table holds nothing but valid requests",
    );
    t.diagnostic(
      `${Date.now() - started} ms: ${sentValid.size} valid requests executed, ${all.length - sentValid.size} refused; ${recorded.length} recorded`,
    );
  });
});
