// Run inside a namespace (test/e2e/clock-skew.test.ts), usually under libfaketime: one broker
// tunnel to one gateway, knocking with the gateway's rotating sequence as the broker does
// (broker/knocker.ts, broker/tunnel.ts), logging as the broker does, until SIGTERM. Prints one
// `{"event":"clock","nowMs":…}` line first: Date.now() as this process sees it.
import { GatewayTunnel } from '../../broker/tunnel.js';
import { knockerFor } from '../../broker/knocker.js';
import type { GatewaySsh, TunnelOptions } from '../../config/schemas/broker.js';
import { createLogger } from '../../lib/log.js';

interface Spec {
  readonly gatewayId: string;
  readonly ssh: GatewaySsh;
  readonly connectTimeoutMs: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
}

const spec = JSON.parse(process.argv[2] ?? '') as Spec;
process.stdout.write(`${JSON.stringify({ event: 'clock', nowMs: Date.now() })}\n`);
const log = createLogger('broker', { level: 'info' });
const options: TunnelOptions = {
  connectTimeoutMs: spec.connectTimeoutMs,
  keepaliveIntervalMs: 5000,
  keepaliveCountMax: 3,
  backoffInitialMs: spec.backoffInitialMs,
  backoffMaxMs: spec.backoffMaxMs,
  drainMs: 0,
  maxChannels: 4,
  channelOpensPerSecond: 50,
  channelOpenBurst: 100,
  messagesPerSecond: 20000,
  messageBurst: 40000,
};
// No channel is opened in these tests: the Redis side is never dialled.
const knocker = knockerFor(spec.gatewayId, spec.ssh.knock, log.child({ gatewayId: spec.gatewayId }));
const tunnel = new GatewayTunnel(
  spec.gatewayId,
  spec.ssh,
  { host: '127.0.0.1', port: 9 },
  options,
  knocker,
  log,
);
tunnel.start();
process.once('SIGTERM', () => {
  void tunnel.close().then(() => process.exit(0));
});
