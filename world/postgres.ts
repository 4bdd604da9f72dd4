// A real PostgreSQL server for the world's core: Debian's binaries (the version the core role
// installs), a cluster made with initdb in the world's folder, run inside the core's namespace
// as the `postgres` OS user (PostgreSQL refuses root). It listens on a Unix socket in that
// folder only (no TCP at all, so never on the machine's own 5432), with peer authentication as
// deployed; the world's core runs as root, which pg_ident maps to the core's role. The core
// creates its schema and tables itself, as in production: here are only the role and the
// database the Ansible role creates (ansible/roles/core/tasks/main.yml). The world removes the
// folder and stops the server by pid at close, also when a bring-up fails.
import {
  appendFileSync,
  chmodSync,
  chownSync,
  mkdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { CorePostgres } from '../config/render/core.js';
import { descendants, isAlive, type Host, type HostProcess, type World } from './world.js';

/** Debian 12's PostgreSQL, as the core role installs it (core_postgresql_version). */
export const POSTGRES_BIN = '/usr/lib/postgresql/15/bin';
/** The OS user the server runs as (Debian's package creates it). */
const OS_USER = 'postgres';
/** The core's role and database, as the Ansible role names them (core_user, core_database). */
const CORE_ROLE = 'nonstop-core';
const CORE_DATABASE = 'nonstop';
/** Only the name of the socket file (.s.PGSQL.5432 in the world's folder): no TCP listener. */
const PORT = 5432;
const READY = 'database system is ready to accept connections';

/** One PostgreSQL server of the world: its folder (its socket, and its cluster under data/). */
export class PostgresServer {
  readonly dataDir: string;

  /** Use `startWorldPostgres()`. */
  constructor(
    readonly host: Host,
    readonly dir: string,
    /** The postmaster (setpriv and `ip netns exec` exec it: this pid is the postmaster's); start() replaces it. */
    public process: HostProcess,
  ) {
    this.dataDir = join(dir, 'data');
  }

  /** One query as the postgres superuser (psql -At): its rows, `|`-separated, one a line. */
  async adminQuery(sql: string): Promise<string> {
    const out = await this.host.check(
      'setpriv',
      [
        ...asOsUser(),
        join(POSTGRES_BIN, 'psql'),
        '--no-psqlrc',
        '-At',
        '-h',
        this.dir,
        '-p',
        String(PORT),
      ].concat(['-U', OS_USER, '-d', 'postgres', '-c', sql]),
      { timeoutMs: 30_000 },
    );
    return out.trim();
  }

  /**
   * SIGKILL of the postmaster and of every backend and auxiliary process it forked, as when the
   * OOM killer or a crash takes the server: no shutdown checkpoint, whatever was in flight is
   * cut. The postmaster is stopped first so it forks nothing between the listing and the kill.
   */
  async kill(): Promise<void> {
    const pid = this.process.pid;
    if (!this.process.running) throw new Error(`PostgreSQL (pid ${pid}) is not running`);
    process.kill(pid, 'SIGSTOP');
    const children = descendants(pid);
    for (const p of children) signal(p, 'SIGKILL');
    signal(pid, 'SIGKILL');
    await this.process.exited;
    // Its children are reaped by whoever inherited them; a new postmaster refuses to start while
    // one of them still holds the old shared memory.
    const end = Date.now() + 10_000;
    while (children.some(isAlive)) {
      if (Date.now() > end)
        throw new Error(`PostgreSQL's processes ${children.filter(isAlive).join(', ')} outlived SIGKILL`);
      await sleep(50);
    }
  }

  /** Starts the server again on its cluster (after a kill: crash recovery from the WAL). */
  async start(): Promise<void> {
    if (this.process.running) throw new Error(`PostgreSQL (pid ${this.process.pid}) is running already`);
    this.process = await startPostmaster(this.host, this.dataDir);
  }

  /** A fast shutdown (SIGINT: clients disconnected, a checkpoint written), SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.process.running) return;
    this.process.child.kill('SIGINT');
    const timer = setTimeout(() => this.process.child.kill('SIGKILL'), graceMs);
    await this.process.exited;
    clearTimeout(timer);
  }
}

/**
 * The core's database: its primary server, the primary's standby (option `standby`), and the
 * socket folder through which the core (and a test) reach whichever server is the primary.
 */
export class WorldPostgres {
  readonly port = PORT;
  readonly role = CORE_ROLE;
  readonly database = CORE_DATABASE;
  #primary: PostgresServer;
  #standby: PostgresServer | null;

  /** Use `startWorldPostgres()`. */
  constructor(
    primary: PostgresServer,
    standby: PostgresServer | null,
    /** The primary's folder, or with a standby a link to it that promoteStandby() moves. */
    readonly socketDir: string,
  ) {
    this.#primary = primary;
    this.#standby = standby;
  }

  /** The server that takes the writes now: the first one, until promoteStandby(). */
  get primary(): PostgresServer {
    return this.#primary;
  }

  /** The primary's streaming standby, or null (none asked for, or promoted). */
  get standby(): PostgresServer | null {
    return this.#standby;
  }

  /**
   * The failover an operator (or a tool such as Patroni) runs once the primary is lost: the
   * standby is promoted, then the link the clients use moves to it in one rename. The old
   * primary's process, if still running, is killed first (no split brain). Resolves with the
   * promoted server, the primary from now on.
   */
  async promoteStandby(): Promise<PostgresServer> {
    const old = this.#primary;
    const standby = this.#standby;
    if (standby === null) throw new Error('this world has no PostgreSQL standby');
    if (old.process.running) await old.kill();
    await standby.host.check(
      'setpriv',
      [...asOsUser(), join(POSTGRES_BIN, 'pg_ctl'), 'promote', '-w', '-D', standby.dataDir],
      { timeoutMs: 60_000 },
    );
    const next = `${this.socketDir}.next`;
    symlinkSync(standby.dir, next);
    renameSync(next, this.socketDir);
    this.#primary = standby;
    this.#standby = null;
    return standby;
  }

  /** What the core config's builder takes (config/render/core.ts): the socket, the role, the database. */
  get corePostgres(): CorePostgres {
    return { user: this.role, database: this.database, port: this.port, socketDir: this.socketDir };
  }

  /**
   * A client on the core's database as the core's role, from this (root) process: the socket is
   * a file, reachable from any namespace; peer authentication maps root to the role.
   */
  async connect(): Promise<pg.Client> {
    const client = new pg.Client({
      host: this.socketDir,
      port: this.port,
      user: this.role,
      database: this.database,
    });
    await client.connect();
    return client;
  }
}

/**
 * Makes a cluster in `<world>/postgres` and starts it in `host`'s namespace, with the core's
 * role and database created; resolves once it accepts connections.
 */
export interface WorldPostgresOptions {
  /** The data folder on a tmpfs of this many MiB (World.mountTmpfs): a disk a test can fill. */
  readonly diskMb?: number | undefined;
  /**
   * A synchronous streaming-replication standby (pg_basebackup, `synchronous_commit =
   * remote_apply`: a commit the core was told of is on both). The core reaches "the primary"
   * through a symlink to the primary's socket folder, which promoteStandby() moves, as DNS or
   * an address is moved at a promotion.
   */
  readonly standby?: boolean | undefined;
}

export async function startWorldPostgres(
  world: World,
  host: Host,
  options: WorldPostgresOptions = {},
): Promise<WorldPostgres> {
  const { uid, gid } = osUser(OS_USER);
  // The postgres user must reach its folder through the world's (0700, root's): search only,
  // so it lists nothing there, and every host's folder below is 0700 itself.
  chmodSync(world.dir, 0o711);
  const dir = join(world.dir, 'postgres');
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, uid, gid);
  const dataDir = join(dir, 'data');
  if (options.diskMb !== undefined) world.mountTmpfs(dataDir, options.diskMb, uid, gid);
  await host.check(
    'setpriv',
    [
      ...asOsUser(),
      join(POSTGRES_BIN, 'initdb'),
      '--pgdata',
      dataDir,
      '--username',
      OS_USER,
      '--encoding',
      'UTF8',
      '--locale',
      'C',
      '--auth-local',
      'peer',
      '--auth-host',
      'reject',
    ],
    { timeoutMs: 120_000 },
  );
  // The deployed conf.d/nonstop.conf sets listen_addresses and port; here: no TCP at all.
  appendFileSync(
    join(dataDir, 'postgresql.conf'),
    [
      '',
      "# The test world's (world/postgres.ts): its Unix socket in the world's folder, no TCP.",
      "listen_addresses = ''",
      `port = ${PORT}`,
      `unix_socket_directories = '${dir}'`,
      '',
    ].join('\n'),
  );
  // Peer authentication over the socket, as Debian's default; root (the world's core and its
  // ledgers) maps to the core's role.
  writeFileSync(
    join(dataDir, 'pg_hba.conf'),
    [
      '# TYPE DATABASE USER METHOD',
      `local all ${OS_USER} peer`,
      `local replication ${OS_USER} peer`,
      `local ${CORE_DATABASE} ${CORE_ROLE} peer map=world`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(dataDir, 'pg_ident.conf'), `world root ${CORE_ROLE}\n`);
  const primary = new PostgresServer(host, dir, await startPostmaster(host, dataDir));
  // As the Ansible role does: a role that logs in and nothing more, owning its database.
  await psql(host, dir, [
    `CREATE ROLE "${CORE_ROLE}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE`,
    `CREATE DATABASE ${CORE_DATABASE} OWNER "${CORE_ROLE}" ENCODING 'UTF8'`,
  ]);
  if (options.standby !== true) return new WorldPostgres(primary, null, dir);
  const standby = await startStandby(world, host, dir);
  // Synchronous from now on (the standby is streaming: a commit waits for it to apply).
  await psql(host, dir, [
    `ALTER SYSTEM SET synchronous_standby_names = '${STANDBY_NAME}'`,
    'ALTER SYSTEM SET synchronous_commit = remote_apply',
    'SELECT pg_reload_conf()',
  ]);
  const link = join(world.dir, 'postgres-primary');
  symlinkSync(dir, link);
  return new WorldPostgres(primary, standby, link);
}

/** psql as the postgres OS user on the server whose socket is in `dir`, one command each. */
async function psql(host: Host, dir: string, commands: readonly string[]): Promise<void> {
  await host.check(
    'setpriv',
    [
      ...asOsUser(),
      join(POSTGRES_BIN, 'psql'),
      '--no-psqlrc',
      '-v',
      'ON_ERROR_STOP=1',
      '-h',
      dir,
      '-p',
      String(PORT),
      '-U',
      OS_USER,
      '-d',
      'postgres',
      ...commands.flatMap((c) => ['-c', c]),
    ],
    { timeoutMs: 60_000 },
  );
}

/** The name the primary's synchronous_standby_names waits for. */
const STANDBY_NAME = 'standby';

/** A copy of the primary by pg_basebackup, streaming from it (standby.signal), on its own socket. */
async function startStandby(world: World, host: Host, primaryDir: string): Promise<PostgresServer> {
  const { uid, gid } = osUser(OS_USER);
  const dir = join(world.dir, 'postgres-standby');
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, uid, gid);
  const dataDir = join(dir, 'data');
  await host.check(
    'setpriv',
    [
      ...asOsUser(),
      join(POSTGRES_BIN, 'pg_basebackup'),
      '--pgdata',
      dataDir,
      '--write-recovery-conf',
      '--wal-method=stream',
      '--checkpoint=fast',
      '--dbname',
      `host=${primaryDir} port=${PORT} user=${OS_USER} application_name=${STANDBY_NAME}`,
    ],
    { timeoutMs: 120_000 },
  );
  // Its own socket; once promoted it waits for no standby of its own.
  appendFileSync(
    join(dataDir, 'postgresql.conf'),
    [
      '',
      "# The world's standby.",
      `unix_socket_directories = '${dir}'`,
      "synchronous_standby_names = ''",
      '',
    ].join('\n'),
  );
  const postmaster = await startPostmaster(host, dataDir, 'ready to accept read-only connections');
  return new PostgresServer(host, dir, postmaster);
}

async function startPostmaster(host: Host, dataDir: string, ready = READY): Promise<HostProcess> {
  // setpriv execs the postmaster: the process the world tracks (and a fault kills) is the server.
  const postmaster = host.spawn('setpriv', [...asOsUser(), join(POSTGRES_BIN, 'postgres'), '-D', dataDir]);
  try {
    await Promise.race([
      postmaster.waitForLine((l) => l.includes(ready), 60_000),
      postmaster.exited.then((code) => {
        throw new Error(`exited ${code}`);
      }),
    ]);
  } catch (err) {
    await postmaster.stop(2000);
    throw new Error(
      `${host.name}: PostgreSQL did not start (${(err as Error).message.split('\n')[0]}):\n` +
        postmaster.stderrLines.slice(-20).join('\n'),
      { cause: err },
    );
  }
  return postmaster;
}

function asOsUser(): string[] {
  return [`--reuid=${OS_USER}`, `--regid=${OS_USER}`, '--init-groups', '--'];
}

function osUser(name: string): { uid: number; gid: number } {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name) return { uid: Number(uid), gid: Number(gid) };
  }
  throw new Error(
    `no "${name}" OS user to run the world's PostgreSQL as: install Debian's postgresql-15 (scripts/setup.sh)`,
  );
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
