// `nonstop core --config FILE`: runs a core machine until SIGINT or SIGTERM.
import { dirname, resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../lib/log.js';
import { parseCommandArgs, untilSignal, UsageError, type Command } from './command.js';

export const coreCommand: Command = {
  name: 'core',
  help: `Usage: nonstop core --config FILE

Runs a core machine: an HTTPS listener with mutual TLS (broker client certificates only) that
executes each request's handler exactly once, in one database transaction with its request id.

The config file ("kind": "core") names the route table, the TLS files (internal CA, core
certificate and key), the database (PostgreSQL URL and schema, or PGlite: in memory or in a
data directory), the application ("notes", a path to a JS module exporting one, resolved
against the config file's folder like every other path in it, or null) and "upstreams": the
application's own HTTP servers, in any language, each serving the routes its globs name
("routes": ["site.*"]), called at most once per request id (core/README.md). Every route has
exactly one handler or upstream. Everything is loaded and checked at start; the command fails
there, with the file and field, rather than on a request.

Stops cleanly on SIGINT or SIGTERM: stops accepting, finishes in-flight requests, closes the
database. SIGHUP reads the TLS files (CA bundle, certificate, key) again for new connections.

Options:
  -c, --config FILE   the core config file
  -h, --help          show this help`,
  async run(argv) {
    const { values } = parseCommandArgs(argv, { config: { type: 'string', short: 'c' } });
    if (values.help) {
      console.log(this.help);
      return 0;
    }
    if (values.config === undefined) throw new UsageError('core needs --config FILE');
    const config = loadConfig('core', values.config);
    const logger = createLogger('core', { level: config.logLevel });
    const stopped = untilSignal();
    const { startCore } = await import('../core/server.js');
    const core = await startCore(config, logger, { baseDir: dirname(resolve(values.config)) });
    const onHup = () => void core.reloadTls();
    process.on('SIGHUP', onHup);
    const signal = await stopped;
    process.off('SIGHUP', onHup);
    logger.info({ signal }, 'stopping');
    await core.close();
    logger.flush();
    return 0;
  },
};
