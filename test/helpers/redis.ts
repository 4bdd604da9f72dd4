// A Redis key prefix per test, with every key under it removed afterwards.
import { randomUUID } from 'node:crypto';
import type { TestContext } from 'node:test';
import { Redis } from 'ioredis';

export const REDIS_HOST = process.env.NONSTOP_TEST_REDIS_HOST ?? '127.0.0.1';
export const REDIS_PORT = Number(process.env.NONSTOP_TEST_REDIS_PORT ?? 6379);

export interface TestRedis {
  readonly prefix: string;
  readonly client: Redis;
  /** Every key under this test's prefix. */
  keys(): Promise<string[]>;
}

export function testRedis(t: TestContext): TestRedis {
  const prefix = `t${randomUUID().replace(/-/g, '').slice(0, 20)}`;
  const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT, lazyConnect: false });
  const keys = async () => {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
    return found;
  };
  t.after(async () => {
    const left = await keys();
    if (left.length > 0) await client.del(...left);
    client.disconnect();
  });
  return { prefix, client, keys };
}
