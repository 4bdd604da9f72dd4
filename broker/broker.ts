// Starts a broker: one worker per configured gateway queue, sharing the route validators and
// the core client; each gateway's worker and reply connection go to that gateway's own Redis.
// And a tunnel to each gateway that has an `ssh` section, through which that gateway reaches
// its Redis on this broker.
import { gatewayRedis, type BrokerConfig } from '../config/schemas/broker.js';
import type { RoutesConfig } from '../config/schemas/routes.js';
import type { Logger } from '../lib/log.js';
import { loadQueueScripts } from '../lib/queue-scripts.js';
import { createRedis, type Redis } from '../lib/redis.js';
import { relayedAnswers, type RelayedAnswer } from '../lib/acme-relay.js';
import { ChallengeInbox, ChallengeOutbox } from './acme-relay.js';
import { ChallengeRelayHub } from './acme-relay-hub.js';
import { CoreClient } from './core-client.js';
import { GatewayWorker } from './gateway-worker.js';
import type { Knocker } from './knocker.js';
import { BrokerWorkMetrics } from './metrics.js';
import type { StatusSnapshot } from './status-server.js';
import { TunnelManager } from './tunnel-manager.js';
import { RequestValidator } from './validator.js';

export interface Broker {
  readonly workers: ReadonlyMap<string, GatewayWorker>;
  readonly tunnels: TunnelManager;
  /** Writes what the hub relayed from `source` into `target`'s inbox (a cell: from its parent). */
  relayChallenges(target: string, source: string, answers: unknown): Promise<void>;
  /** Its tunnels and job counts now (no cells: everything runs in this process). */
  snapshot(): StatusSnapshot;
  /** The snapshot with this process's work metrics (broker/metrics.ts), for the status endpoint. */
  status(): Promise<StatusSnapshot>;
  /**
   * Stops taking jobs, finishes the ones in flight (their replies go out through the
   * tunnels, which stay up a moment longer), then closes the tunnels and disconnects.
   */
  close(): Promise<void>;
}

export function startBroker(
  config: BrokerConfig,
  routes: RoutesConfig,
  log: Logger,
  options: {
    knocker?: Knocker;
    /**
     * Where each gateway's checked ACME outbox goes: a cell's parent, which relays it to the
     * other cells. Absent: a hub in this process relays among this process's gateways.
     */
    challenges?: (source: string, answers: readonly RelayedAnswer[]) => void;
  } = {},
): Broker {
  const validator = new RequestValidator(config.routes, routes);
  const core = new CoreClient(config.core, log);
  const workers = new Map<string, GatewayWorker>();
  const metrics = new BrokerWorkMetrics(config.gateways.map((g) => g.id));
  const connections: Redis[] = [];
  const inboxes = new Map<string, ChallengeInbox>();
  const outboxes = new Map<string, ChallengeOutbox>();
  const hub =
    options.challenges === undefined
      ? new ChallengeRelayHub(config.gateways, (target, source, answers) => {
          void inboxes.get(target)?.relay(source, answers);
        })
      : undefined;
  const published = options.challenges ?? ((source, answers) => hub!.published(source, answers));
  for (const gw of config.gateways) {
    const gwLog = log.child({ gatewayId: gw.id });
    const replies = createRedis(
      gatewayRedis(config, gw.id),
      'blocking',
      `nonstop-broker-${config.id}-${gw.id}-replies`,
      gwLog,
    );
    // Gateways call BullMQ's scripts by hash only; a Redis that restarted has forgotten them.
    replies.on('ready', () => {
      loadQueueScripts(replies).then(
        (n) => gwLog.debug({ scripts: n }, 'queue scripts loaded'),
        (err: unknown) =>
          gwLog.error(
            { err: err instanceof Error ? err.message : String(err) },
            'loading the queue scripts failed',
          ),
      );
    });
    connections.push(replies);
    // The ACME relay shares the reply connection: a gateway's Redis counts its clients.
    const inbox = new ChallengeInbox(replies, config.redis.prefix, gw.id, gwLog);
    inboxes.set(gw.id, inbox);
    let connectedBefore = false;
    replies.on('ready', () => {
      // A Redis that restarted lost the inbox; this broker still holds what it relayed.
      if (connectedBefore) void inbox.rewrite();
      connectedBefore = true;
    });
    const outbox = new ChallengeOutbox({
      redis: replies,
      prefix: config.redis.prefix,
      gatewayId: gw.id,
      names: gw.names ?? [],
      onChange: (answers) => published(gw.id, answers),
      log: gwLog,
    });
    outbox.start();
    outboxes.set(gw.id, outbox);
    workers.set(
      gw.id,
      new GatewayWorker({
        config,
        gatewayId: gw.id,
        routes,
        validator,
        core,
        replies,
        log,
        metrics: metrics.forGateway(gw.id),
      }),
    );
  }
  const tunnels = new TunnelManager(config, log, options.knocker);
  tunnels.start();
  log.info(
    { brokerId: config.id, gateways: [...workers.keys()], tunnels: [...tunnels.tunnels.keys()] },
    'broker working',
  );
  const snapshot = (): StatusSnapshot => ({
    tunnels: tunnels.status(),
    jobs: Object.fromEntries([...workers].map(([id, w]) => [id, { ...w.counts }])),
    queues: Object.fromEntries([...workers].map(([id, w]) => [id, w.depth])),
    cells: [],
    acme: Object.fromEntries([...outboxes].map(([id, o]) => [id, { ...o.counts }])),
  });
  return {
    workers,
    tunnels,
    relayChallenges: (target, source, answers) =>
      inboxes.get(target)?.relay(source, relayedAnswers(answers, Date.now())) ?? Promise.resolve(),
    snapshot,
    status: async () => ({ ...snapshot(), work: [await metrics.json()] }),
    async close() {
      for (const o of outboxes.values()) o.close();
      for (const i of inboxes.values()) i.close();
      await Promise.all([...workers.values()].map((w) => w.close()));
      if (tunnels.tunnels.size > 0 && config.tunnels.drainMs > 0) {
        await new Promise((r) => setTimeout(r, config.tunnels.drainMs));
      }
      await tunnels.close();
      core.close();
      for (const c of connections) c.disconnect();
    },
  };
}
