// All of a broker's tunnels: one per gateway that has an `ssh` section, each run on its own,
// each leading to that gateway's own Redis.
import { gatewayRedis, type BrokerConfig } from '../config/schemas/broker.js';
import type { Logger } from '../lib/log.js';
import { knockerFor, type Knocker } from './knocker.js';
import { GatewayTunnel, type TunnelStatus } from './tunnel.js';

export class TunnelManager {
  readonly tunnels: ReadonlyMap<string, GatewayTunnel>;

  /** `knocker` replaces every gateway's configured knock (tests). */
  constructor(config: BrokerConfig, log: Logger, knocker?: Knocker) {
    const tunnels = new Map<string, GatewayTunnel>();
    for (const gw of config.gateways) {
      if (gw.ssh === undefined) continue;
      const { host, port } = gatewayRedis(config, gw.id);
      const target = { host, port };
      const knock = knocker ?? knockerFor(gw.id, gw.ssh.knock, log.child({ gatewayId: gw.id }), gw.ssh.port);
      tunnels.set(gw.id, new GatewayTunnel(gw.id, gw.ssh, target, config.tunnels, knock, log));
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
