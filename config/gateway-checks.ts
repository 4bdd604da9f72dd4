// What a gateway config must be beyond its schema's shapes, checked wherever a config is
// validated (config/load.ts): by the daemon at start and by `nonstop check-config` alike.
import { BlockList, isIP } from 'node:net';
import type { FieldProblem } from './errors-format.js';
import { redisEndpoints, type GatewayConfig } from './schemas/gateway.js';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** 127.0.0.0/8, ::1 (in any spelling) or `localhost`. */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const family = isIP(host);
  if (family === 0) return false;
  return LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

export function gatewayProblems(config: GatewayConfig): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const metrics = config.metrics;
  if (metrics !== undefined && !metrics.allowNonLoopback && !isLoopbackHost(metrics.host)) {
    problems.push({
      field: 'metrics.host',
      expected:
        `must be a loopback address (127.0.0.0/8, ::1 or localhost), got ${JSON.stringify(metrics.host)}: ` +
        'the metrics listener must not face the internet. For an admin network the internet cannot ' +
        'reach, set "metrics.allowNonLoopback": true',
    });
  }
  // A tunnel's remote forward listens on the gateway's loopback: a metrics listener on its port
  // would take it, and that broker's tunnel could not forward.
  const clash =
    metrics === undefined || metrics.port === 0 || !isLoopbackHost(metrics.host)
      ? undefined
      : redisEndpoints(config.redis).find((e) => e.port === metrics.port && isLoopbackHost(e.host));
  if (clash !== undefined) {
    problems.push({
      field: 'metrics.port',
      expected: `must not be ${clash.port}, the loopback port of a Redis endpoint (a broker's tunnel listens there)`,
    });
  }
  return problems;
}
