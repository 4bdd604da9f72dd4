// Redis faults on a broker for the chaos suite: SIGKILL of every Redis a broker runs for the
// gateways (one shared process, or one per gateway), then a start of each again. The kill is by
// pid; the start goes through the world's own API.
import type { ThreeTier } from '../../world/three-tier.js';
import { redisesOf } from './broker-probes.js';

interface PerGatewayRedisApi {
  startRedis?: (brokerId: string, gatewayId: string) => Promise<unknown>;
}

/** SIGKILLs every Redis on `brokerId` that serves a gateway; resolves when all have exited. */
export async function sigkillRedis(tt: ThreeTier, brokerId: string): Promise<number> {
  const victims = redisesOf(
    tt.broker(brokerId),
    tt.gateways.map((g) => g.id),
  );
  for (const v of victims) v.process.child.kill('SIGKILL');
  await Promise.all(victims.map((v) => v.process.exited));
  return victims.length;
}

/** Starts again every Redis of `brokerId` that `sigkillRedis` killed. */
export async function startRedisAgain(tt: ThreeTier, brokerId: string): Promise<void> {
  const api = tt as unknown as PerGatewayRedisApi;
  if (typeof api.startRedis === 'function') {
    for (const g of tt.gateways) await api.startRedis.call(tt, brokerId, g.id);
  } else {
    // One Redis for every gateway: a restart of a process already gone is a start.
    await tt.restartRedis(brokerId);
  }
}
