// `nonstop broker --config FILE`
import { loadConfig } from '../config/load.js';
import { loadRoutes } from '../config/routes.js';
import { startBroker } from '../broker/broker.js';
import type { Command } from './command.js';
import { runDaemon } from './daemon.js';

export const brokerCommand: Command = {
  name: 'broker',
  summary: 'run a broker: take queued requests, validate them, execute them at the core, reply',
  help: `Usage: nonstop broker --config FILE

Runs a broker: a worker on each configured gateway's queue that validates every
request against its route's JSON Schema, sends valid ones to the core over mutual
TLS (the request id is the idempotency key) and delivers the reply to the waiting
gateway. Listens on nothing.

Options:
  -c, --config FILE   broker config file ("kind": "broker"); see config/examples/broker.json
  -h, --help          show this help

Signals: SIGINT/SIGTERM stop taking jobs and finish the ones in flight.`,
  run(argv) {
    return runDaemon('broker', this.help, argv, (file, makeLog) => {
      const config = loadConfig('broker', file);
      const routes = loadRoutes(config.routes);
      return Promise.resolve(startBroker(config, routes, makeLog(config.logLevel)));
    });
  },
};
