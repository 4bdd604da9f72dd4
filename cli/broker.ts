// `nonstop broker --config FILE [--gateway ID]`. The broker's own code is imported where it runs
// (a cell, or one process for all): the parent of the cells loads none of it.
import { loadConfig } from '../config/load.js';
import { loadRoutes } from '../config/routes.js';
import { CellSupervisor, publishToParent, serveParent } from '../broker/cells.js';
import { startStatusServer, type StatusSource } from '../broker/status-server.js';
import type { BrokerConfig } from '../config/schemas/broker.js';
import type { Logger } from '../lib/log.js';
import { UsageError, type Command } from './command.js';
import { runDaemon, type Running } from './daemon.js';

export const brokerCommand: Command = {
  name: 'broker',
  help: `Usage: nonstop broker --config FILE [--gateway ID]

Runs a broker: a worker on each configured gateway's queue that validates every
request against its route's JSON Schema, sends valid ones to the core over mutual
TLS (the request id is the idempotency key) and delivers the reply to the waiting
gateway. For each gateway with an "ssh" section it keeps a tunnel up (knock, SSH with
the pinned host key, a remote forward of the gateway's 127.0.0.1:<remotePort> to this
side's Redis), reconnecting with backoff whenever it drops. Listens on nothing but the
optional loopback status endpoint ("status": /status JSON, /metrics Prometheus, and
a page on / that \`nonstop status\` prints in a terminal).

Each gateway is served by a process of its own (a cell, "cells.perGateway", on by
default), which this process starts, restarts when it exits and stops: one gateway's
load, attack or crash stays in its cell.

Options:
  -c, --config FILE   broker config file ("kind": "broker"); see config/examples/broker.json
      --gateway ID    serve only this gateway of the config (what a cell runs; alone,
                      a broker for that one gateway, with the status endpoint)
  -h, --help          show this help

Signals: SIGINT/SIGTERM stop taking jobs and finish the ones in flight.`,
  run(argv) {
    return runDaemon(
      'broker',
      this.help,
      argv,
      async (file, makeLog, values) => {
        const config = loadConfig('broker', file);
        const routes = loadRoutes(config.routes);
        const only = values.gateway;
        if (typeof only === 'string') {
          if (!config.gateways.some((g) => g.id === only))
            throw new UsageError(
              `gateway "${only}" is not in ${file} (its gateways: ${config.gateways.map((g) => g.id).join(', ')})`,
            );
          const cellConfig = { ...config, gateways: config.gateways.filter((g) => g.id === only) };
          const log = makeLog(config.logLevel).child({ cell: only });
          const { startBroker } = await import('../broker/broker.js');
          // A cell's ACME outbox goes to its parent, which relays it to the other cells.
          const broker = startBroker(
            cellConfig,
            routes,
            log,
            process.send === undefined ? {} : { challenges: (_, answers) => publishToParent(answers) },
          );
          // A cell of a broker reports to it; alone, it is a broker of one gateway.
          if (process.send !== undefined)
            return {
              until: serveParent(
                () => broker.status(),
                log,
                (source, answers) => void broker.relayChallenges(only, source, answers),
              ),
              async close() {
                await broker.close();
                // The channel to the broker would keep this process alive.
                if (process.connected) process.disconnect();
              },
            };
          return withStatus(
            cellConfig,
            log,
            { brokerId: config.id, snapshot: () => broker.status() },
            broker,
          );
        }
        const log = makeLog(config.logLevel);
        if (!config.cells.perGateway) {
          const { startBroker } = await import('../broker/broker.js');
          const broker = startBroker(config, routes, log);
          return withStatus(config, log, { brokerId: config.id, snapshot: () => broker.status() }, broker);
        }
        const cells = new CellSupervisor({
          configFile: file,
          gatewayIds: config.gateways.map((g) => g.id),
          maxHeapMb: config.cells.maxHeapMb,
          served: config.gateways,
          log,
        });
        cells.start();
        log.info(
          { brokerId: config.id, gateways: config.gateways.map((g) => g.id) },
          'broker working, a cell per gateway',
        );
        return withStatus(config, log, { brokerId: config.id, snapshot: () => cells.snapshot() }, cells);
      },
      { gateway: { type: 'string' } },
    );
  },
};

/** `running` and, when the config has one, the status endpoint; both closed together. */
async function withStatus(
  config: BrokerConfig,
  log: Logger,
  source: StatusSource,
  running: Running,
): Promise<Running> {
  if (config.status === undefined) return running;
  const status = await startStatusServer(config.status, source, log).catch(async (err: unknown) => {
    await running.close();
    throw err;
  });
  return {
    async close() {
      await running.close();
      await status.close();
    },
  };
}
