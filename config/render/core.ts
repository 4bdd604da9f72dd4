// A core machine's core.json: `nonstop render core` (Ansible) and the test world build it here.
// Decided once: the core listens on its private address only (never a wildcard), with mutual
// TLS from the role's files; PostgreSQL over its Unix socket (peer authentication, no password).
import { isIP } from 'node:net';
import { join } from 'node:path';
import { errors } from '../../lib/errors.js';
import { CORE_METRICS_PORT } from '../schemas/core.js';
import { checkedDocument, optional } from './document.js';

/** PostgreSQL on the core host, reached over its Unix socket as `user` (peer authentication). */
export interface CorePostgres {
  readonly user: string;
  readonly database: string;
  readonly port: number;
  /** Default /var/run/postgresql (Debian's). */
  readonly socketDir?: string;
}

export interface CoreInput {
  /** The role's folder: routes.json, tls/ca.crt, tls/core.crt, tls/core.key. */
  readonly configDir: string;
  /** The core's address on the private network: the only one it listens on. */
  readonly privateAddress: string;
  readonly port?: number;
  /** PostgreSQL, or the embedded database (PGlite) in `dataDir`. */
  readonly database:
    { readonly postgres: CorePostgres } | { readonly embedded: { readonly dataDir: string } };
  /** "notes", a module path, or null when `upstreams` serve every route. */
  readonly application?: string | null;
  /** The application's own HTTP servers (core/upstream/); defaults as in the core schema. */
  readonly upstreams?: readonly {
    readonly url: string;
    readonly routes: readonly string[];
    readonly ca?: string;
    readonly timeoutMs?: number;
    readonly maxResponseBytes?: number;
  }[];
  /** Organizational unit of the brokers' client certificates. */
  readonly brokerUnit?: string;
  /** The metrics listener's port on loopback (default 9465); null: none. */
  readonly metricsPort?: number | null;
}

export function coreFiles(configDir: string) {
  return {
    routes: join(configDir, 'routes.json'),
    ca: join(configDir, 'tls', 'ca.crt'),
    cert: join(configDir, 'tls', 'core.crt'),
    key: join(configDir, 'tls', 'core.key'),
  } as const;
}

function databaseUrl(pg: CorePostgres): string {
  // The input schema keeps user, database and folder to characters a URL carries as they are.
  return `postgresql://${pg.user}@/${pg.database}?host=${pg.socketDir ?? '/var/run/postgresql'}&port=${pg.port}`;
}

export function coreDocument(input: CoreInput) {
  const label = 'core.json';
  const ip = isIP(input.privateAddress);
  if (ip === 0 || input.privateAddress === '0.0.0.0' || input.privateAddress === '::')
    throw errors.CONFIG_INVALID(
      `${label}: field "privateAddress" must be the core's own private IP address (got ${JSON.stringify(input.privateAddress)})`,
    );
  const files = coreFiles(input.configDir);
  const metricsPort = input.metricsPort === undefined ? CORE_METRICS_PORT : input.metricsPort;
  return checkedDocument('core', label, {
    kind: 'core',
    routes: files.routes,
    listen: { host: input.privateAddress, port: input.port ?? 9443 },
    tls: { ca: files.ca, cert: files.cert, key: files.key, ...optional('brokerUnit', input.brokerUnit) },
    database:
      'postgres' in input.database
        ? { url: databaseUrl(input.database.postgres) }
        : { dataDir: input.database.embedded.dataDir },
    ...optional('application', input.application),
    ...optional('upstreams', input.upstreams),
    // On loopback, always: read on the core host, or through an admin's SSH forward.
    ...(metricsPort === null ? {} : { metrics: { host: '127.0.0.1', port: metricsPort } }),
  } as const);
}

export type CoreDocument = ReturnType<typeof coreDocument>;
