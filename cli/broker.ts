// `nonstop broker --config FILE`
import { loadConfig } from '../config/load.js';
import { loadRoutes } from '../config/routes.js';
import { startBroker } from '../broker/broker.js';
import { startStatusServer } from '../broker/status-server.js';
import type { Command } from './command.js';
import { runDaemon } from './daemon.js';

export const brokerCommand: Command = {
  name: 'broker',
  summary: 'run a broker: take queued requests, validate them, execute them at the core, reply',
  help: `Usage: nonstop broker --config FILE

Runs a broker: a worker on each configured gateway's queue that validates every
request against its route's JSON Schema, sends valid ones to the core over mutual
TLS (the request id is the idempotency key) and delivers the reply to the waiting
gateway. For each gateway with an "ssh" section it keeps a tunnel up (knock, SSH with
the pinned host key, a remote forward of the gateway's 127.0.0.1:<remotePort> to this
side's Redis), reconnecting with backoff whenever it drops. Listens on nothing but the
optional loopback status endpoint ("status": /status JSON, /metrics Prometheus).

Options:
  -c, --config FILE   broker config file ("kind": "broker"); see config/examples/broker.json
  -h, --help          show this help

Signals: SIGINT/SIGTERM stop taking jobs and finish the ones in flight.`,
  run(argv) {
    return runDaemon('broker', this.help, argv, async (file, makeLog) => {
      const config = loadConfig('broker', file);
      const routes = loadRoutes(config.routes);
      const log = makeLog(config.logLevel);
      const broker = startBroker(config, routes, log);
      if (config.status === undefined) return broker;
      const source = { brokerId: config.id, tunnels: () => broker.tunnels.status(), workers: broker.workers };
      const status = await startStatusServer(config.status, source, log).catch(async (err: unknown) => {
        await broker.close();
        throw err;
      });
      return {
        async close() {
          await broker.close();
          await status.close();
        },
      };
    });
  },
};
