// The world's PostgreSQL server (world/postgres.ts): a real cluster in a host's namespace, on a
// Unix socket in the world's folder only, as the postgres OS user; what was committed survives
// a SIGKILL of the postmaster and its backends; the world's close leaves nothing behind.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { openPostgres } from '../../core/db/postgres.js';
import { createLogger } from '../../lib/log.js';
import { startWorldPostgres } from '../../world/postgres.js';
import { isAlive, World, worldSkipReason } from '../../world/world.js';

const skip = worldSkipReason();

describe("the world's PostgreSQL", { skip }, () => {
  test(
    'socket only, as postgres; survives SIGKILL with its commits; gone at close',
    { timeout: 180_000 },
    async () => {
      const world = await World.create();
      const pids: number[] = [];
      const dirs: string[] = [];
      try {
        const host = await world.addHost('core', { private: 1 });
        const pg = await startWorldPostgres(world, host);
        const server = pg.primary;
        dirs.push(server.dir);
        assert.ok(server.dataDir.startsWith(world.dir), 'the cluster is in the world');
        assert.ok(existsSync(join(pg.socketDir, `.s.PGSQL.${pg.port}`)), 'its socket is in its folder');
        assert.equal(statSync(server.dataDir).uid, uidOf('postgres'), 'the cluster belongs to postgres');
        assert.equal(
          statSync(`/proc/${server.process.pid}`).uid,
          uidOf('postgres'),
          'the postmaster runs as postgres',
        );
        // No TCP listener in its namespace: nothing but the socket file.
        assert.equal((await host.check('ss', ['-ltnH'])).trim(), '');

        // The core's way in: its URL as the builder renders it, its role creating the schema.
        const url = `postgresql://${pg.role}@/${pg.database}?host=${pg.socketDir}&port=${pg.port}`;
        const logger = createLogger('test', { level: 'silent' });
        const db = await openPostgres({ url, schema: 'ledger', poolSize: 2 }, logger);
        await db.query('CREATE TABLE marks (n integer PRIMARY KEY)');
        await db.transaction(async (tx) => {
          await tx.query('INSERT INTO marks VALUES (1), (2)');
        });
        const owner = await db.query(
          'SELECT current_user AS u, rolsuper FROM pg_roles WHERE rolname = current_user',
        );
        assert.deepEqual(
          owner.rows,
          [{ u: 'nonstop-core', rolsuper: false }],
          'the core role, not a superuser',
        );

        pids.push(server.process.pid);
        await server.kill();
        assert.ok(!server.process.running);
        await assert.rejects(db.query('SELECT 1'), 'the server is gone');
        await server.start();
        pids.push(server.process.pid);
        // The pool's connections died with the server: the next query takes a new one.
        const rows = await db.query('SELECT n FROM marks ORDER BY n');
        assert.deepEqual(
          rows.rows.map((r) => r['n']),
          [1, 2],
          'the committed rows survived the crash',
        );
        const client = await pg.connect();
        try {
          const r = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM ledger.marks');
          assert.equal(r.rows[0]?.n, 2, 'the ledger client reads the same rows');
        } finally {
          await client.end();
        }
        await db.close();
      } finally {
        await world.close();
      }
      assert.equal(dirs.length, 1);
      for (const d of dirs) assert.ok(!existsSync(d), 'its folder is removed with the world');
      for (const pid of pids) assert.ok(!isAlive(pid), `postmaster ${pid} is gone`);
    },
  );
});

function uidOf(name: string): number {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  assert.ok(line !== undefined, `user ${name}`);
  return Number(line.split(':')[2]);
}
