// All of a broker's tunnels: one per gateway that has an `ssh` section, each run on its own.
import type { BrokerConfig } from '../config/schemas/broker.js';
import type { Logger } from '../lib/log.js';
import { noKnock, type Knocker } from './knocker.js';
import { GatewayTunnel, type TunnelStatus } from './tunnel.js';

export class TunnelManager {
  readonly tunnels: ReadonlyMap<string, GatewayTunnel>;

  constructor(config: BrokerConfig, log: Logger, knocker: Knocker = noKnock) {
    const tunnels = new Map<string, GatewayTunnel>();
    const target = { host: config.redis.host, port: config.redis.port };
    for (const gw of config.gateways) {
      if (gw.ssh === undefined) continue;
      tunnels.set(gw.id, new GatewayTunnel(gw.id, gw.ssh, target, config.tunnels, knocker, log));
    }
    this.tunnels = tunnels;
  }

  start(): void {
    for (const t of this.tunnels.values()) t.start();
  }

  status(): TunnelStatus[] {
    return [...this.tunnels.values()].map((t) => t.status());
  }

  async close(): Promise<void> {
    await Promise.all([...this.tunnels.values()].map((t) => t.close()));
  }
}
