// Starts a broker: one worker per configured gateway queue, sharing the route validators,
// the core client and the connection that delivers replies.
import type { BrokerConfig } from '../config/schemas/broker.js';
import type { RoutesConfig } from '../config/schemas/routes.js';
import type { Logger } from '../lib/log.js';
import { createRedis } from '../lib/redis.js';
import { CoreClient } from './core-client.js';
import { GatewayWorker } from './gateway-worker.js';
import { RequestValidator } from './validator.js';

export interface Broker {
  readonly workers: ReadonlyMap<string, GatewayWorker>;
  /** Stops taking jobs, finishes the ones in flight, then disconnects. */
  close(): Promise<void>;
}

export function startBroker(config: BrokerConfig, routes: RoutesConfig, log: Logger): Broker {
  const validator = new RequestValidator(config.routes, routes);
  const core = new CoreClient(config.core, log);
  const replies = createRedis(config.redis, 'blocking', `nonstop-broker-${config.id}-replies`, log);
  const workers = new Map<string, GatewayWorker>();
  for (const gw of config.gateways) {
    workers.set(gw.id, new GatewayWorker({ config, gatewayId: gw.id, validator, core, replies, log }));
  }
  log.info({ brokerId: config.id, gateways: [...workers.keys()] }, 'broker working');
  return {
    workers,
    async close() {
      await Promise.all([...workers.values()].map((w) => w.close()));
      core.close();
      replies.disconnect();
    },
  };
}
