// The names of the Redis users of one gateway's Redis on a broker, in one place: the broker's
// ACL (`nonstop redis-acl`) creates them and the gateway's config (config/render/gateway.ts)
// logs in as them.

/** The broker's worker user, unless broker.json's redis.username names another. */
export const DEFAULT_WORKER_USER = 'nonstop-broker';

/** The one user a gateway logs in as: confined to its own queue's keys. */
export function gatewayUser(gatewayId: string): string {
  return `nonstop-gw-${gatewayId}`;
}
