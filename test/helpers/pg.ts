// A fresh PostgreSQL schema per test, `nonstop_test_<random>`, dropped when the test ends.
// The server is the machine's own (NONSTOP_TEST_PG_URL overrides it).
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import pg from 'pg';

export const TEST_PG_URL = process.env.NONSTOP_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestSchema {
  readonly url: string;
  readonly schema: string;
}

export function testSchemaName(): string {
  return `nonstop_test_${randomBytes(6).toString('hex')}`;
}

/**
 * Names a fresh schema, creates it unless `create` is false (to test code that creates its own),
 * and drops it with everything in it after the test. The drop may run before the code under
 * test closes its pool (`t.after` hooks run in the order registered); that is fine, because
 * idle pooled connections hold no locks.
 */
export async function useTestSchema(t: TestContext, options: { create?: boolean } = {}): Promise<TestSchema> {
  const schema = testSchemaName();
  if (options.create !== false) await sql(`CREATE SCHEMA ${schema}`);
  t.after(() => sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
  return { url: TEST_PG_URL, schema };
}

/** Runs statements on a connection of its own (outside any schema's search_path). */
export async function sql(text: string, params: readonly unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    return await client.query(text, [...params]);
  } finally {
    await client.end();
  }
}
