// `nonstop gateway --config FILE`
import { loadConfig } from '../config/load.js';
import { loadRoutes } from '../config/routes.js';
import { checkClientAddress } from '../config/client-address.js';
import { checkStaticMounts } from '../config/static-mounts.js';
import type { Command } from './command.js';
import { runDaemon } from './daemon.js';

export const gatewayCommand: Command = {
  name: 'gateway',
  help: `Usage: nonstop gateway --config FILE

Runs a gateway: HTTPS (and HTTP, redirecting or serving) listeners that match each
request against the route table, apply the limits, queue it for a broker and answer
the client with the broker's reply.

Options:
  -c, --config FILE   gateway config file ("kind": "gateway"); see config/examples/gateway.json
  -h, --help          show this help

Signals: SIGHUP reloads the TLS certificate and key; SIGINT/SIGTERM stop gracefully.`,
  run(argv) {
    return runDaemon('gateway', this.help, argv, async (file, makeLog) => {
      const config = loadConfig('gateway', file);
      const routes = loadRoutes(config.routes);
      // Here too, where the file's name is known: the error names it.
      checkStaticMounts(file, config.static, routes);
      checkClientAddress(file, config);
      const { startGateway } = await import('../gateway/server.js');
      const gateway = await startGateway(config, routes, makeLog(config.logLevel));
      const onHup = () => gateway.reloadTls();
      process.on('SIGHUP', onHup);
      return {
        close: async () => {
          process.off('SIGHUP', onHup);
          await gateway.close();
        },
      };
    });
  },
};
