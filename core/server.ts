// The core's one listener: HTTPS with mutual TLS on the private network. Only clients with a
// cert from the internal CA get past the handshake; only those whose cert carries the broker
// unit get past the dispatcher.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { CoreConfig } from '../config/schemas/core.js';
import { loadRoutes } from '../config/routes.js';
import type { RouteDefinition, RoutesConfig } from '../config/schemas/routes.js';
import { errors } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { startMetricsListener, type MetricsListener } from '../lib/metrics-listener.js';
import type { Application } from './application.js';
import { migrate } from './db/migrate.js';
import { openDatabase } from './db/open.js';
import { NONSTOP_SCOPE, nonstopMigrations } from './db/requests.js';
import { schedulePruning } from './db/prune.js';
import { createDispatcher } from './dispatch.js';
import { Executor } from './executor.js';
import { CoreMetrics } from './metrics.js';
import { checkHandlers, loadApplication, NO_APPLICATION } from './load-application.js';
import { checkUpstreams } from './upstream/targets.js';

export interface RunningCore {
  readonly address: { readonly host: string; readonly port: number };
  /** The metrics listener's address, when the config has `metrics`. */
  readonly metricsAddress?: { readonly host: string; readonly port: number };
  /**
   * Reads the TLS files again (SIGHUP) for the connections from now on: a rotated CA bundle,
   * certificate or key (README, "Rotating credentials"). Connections already up keep theirs; a
   * file that fails to read or to load keeps the previous ones. True if it reloaded.
   */
  reloadTls(): boolean;
  /** Stops accepting, lets in-flight requests finish, then closes the database. */
  close(): Promise<void>;
}

export interface CoreOverrides {
  /** Used instead of loading `config.application` (tests, embedding). */
  readonly application?: Application;
  /** Used instead of loading `config.routes`. */
  readonly routes?: RoutesConfig;
  /** Folder a relative `config.application` path is resolved against; default: the working directory. */
  readonly baseDir?: string;
}

/** How long close() waits for in-flight requests before cutting connections. */
const CLOSE_GRACE_MS = 10_000;

export async function startCore(
  config: CoreConfig,
  logger: Logger,
  overrides: CoreOverrides = {},
): Promise<RunningCore> {
  const routes = overrides.routes ?? loadRoutes(config.routes);
  const app =
    overrides.application ??
    (config.application === null
      ? NO_APPLICATION
      : await loadApplication(config.application, overrides.baseDir));
  const upstreams = checkUpstreams(config.upstreams, overrides.baseDir);
  checkHandlers(app, routes, upstreams);
  const tls = readTls(config.tls);

  const db = await openDatabase(config.database, logger);
  let server: Server | undefined;
  let metricsListener: MetricsListener | undefined;
  try {
    await migrate(db, NONSTOP_SCOPE, nonstopMigrations, logger);
    await migrate(db, `app:${app.name}`, app.migrations, logger);
    const routeMap = new Map<string, RouteDefinition>(routes.routes.map((r) => [r.name, r]));
    let metrics: CoreMetrics | undefined;
    if (config.metrics !== undefined) {
      metrics = new CoreMetrics(routeMap.keys());
      metricsListener = await startMetricsListener(config.metrics, metrics.registry, logger);
    }
    const dispatch = createDispatcher({
      ...(metrics === undefined ? {} : { metrics }),
      brokerUnit: config.tls.brokerUnit,
      routes: routeMap,
      executor: new Executor(db, app, logger, { upstreams }),
      db,
      logger,
    });
    const inFlight = new Set<Promise<void>>();
    let closing = false;
    server = createServer(
      // TLS 1.3 only: both ends are ours (the broker's client asks for 1.3 too), so nothing
      // older needs to be spoken here, and 1.3 has only AEAD, forward-secret suites.
      { ...tls, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
      (req, res) => {
        // While closing, every answer ends its connection so close() is not held up by keep-alive.
        if (closing) res.setHeader('connection', 'close');
        const done = dispatch(req, res).finally(() => inFlight.delete(done));
        inFlight.add(done);
      },
    );
    server.on('tlsClientError', (err: Error, socket: TLSSocket) =>
      logger.warn(
        // A cert from an unknown CA passes OpenSSL and is refused by Node just after, so the error
        // itself only says "socket hang up"; authorizationError says why.
        { clientIp: socket.remoteAddress, reason: socket.authorizationError?.toString() ?? err.message },
        'TLS handshake rejected',
      ),
    );
    const listening = server;
    const address = await listen(listening, config.listen.host, config.listen.port);
    const pruning = schedulePruning(db, config.database.requestRetentionSeconds, logger);
    logger.info(
      {
        host: address.host,
        port: address.port,
        application: app.name,
        upstreams: upstreams.map((u) => u.url.origin),
        database: db.kind,
      },
      'core listening',
    );

    const metricsAt = metricsListener?.address;
    return {
      address,
      ...(metricsAt === undefined
        ? {}
        : { metricsAddress: { host: metricsAt.address, port: metricsAt.port } }),
      reloadTls: () => {
        try {
          listening.setSecureContext({ ...readTls(config.tls), minVersion: 'TLSv1.3' });
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'TLS reload failed; keeping the previous files');
          return false;
        }
        logger.info({ ca: config.tls.ca, cert: config.tls.cert }, 'TLS files reloaded');
        return true;
      },
      close: async () => {
        closing = true;
        const closed = new Promise<void>((resolve) => listening.close(() => resolve()));
        listening.closeIdleConnections();
        const cut = setTimeout(() => listening.closeAllConnections(), CLOSE_GRACE_MS);
        await closed;
        clearTimeout(cut);
        // A broker that hung up mid-request leaves no connection, but its execution may still run.
        await Promise.allSettled([...inFlight]);
        await pruning.stop();
        await db.close();
        for (const upstream of upstreams) upstream.agent.destroy();
        await metricsListener?.close();
        logger.info('core stopped');
      },
    };
  } catch (err) {
    server?.close();
    await metricsListener?.close();
    await db.close();
    throw err;
  }
}

function readTls(tls: CoreConfig['tls']): { ca: Buffer; cert: Buffer; key: Buffer } {
  const read = (field: 'ca' | 'cert' | 'key') => {
    try {
      return readFileSync(tls[field]);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? String(err);
      throw errors.CONFIG_INVALID(`tls.${field}: cannot read ${tls[field]} (${reason})`, undefined, {
        cause: err,
      });
    }
  };
  return { ca: read('ca'), cert: read('cert'), key: read('key') };
}

function listen(server: Server, host: string, port: number): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const info = server.address() as AddressInfo;
      resolve({ host: info.address, port: info.port });
    });
  });
}
