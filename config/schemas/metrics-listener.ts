// The metrics listener of a core or a knock guard: Prometheus text on plain HTTP, on loopback
// unless `allowNonLoopback` says the host is an admin network the internet cannot reach (the
// gateway's `metrics` section works the same way, config/gateway-checks.ts). None unless the
// config has the section; `{}` listens on the daemon's default loopback port.
import { isLoopbackHost } from '../gateway-checks.js';
import type { FieldProblem } from '../errors-format.js';

export const metricsListenerSchema = (defaultPort: number) =>
  ({
    type: 'object',
    additionalProperties: false,
    properties: {
      host: { type: 'string', minLength: 1, maxLength: 253, default: '127.0.0.1' },
      port: { type: 'integer', minimum: 0, maximum: 65535, default: defaultPort },
      allowNonLoopback: { type: 'boolean', default: false },
    },
  }) as const;

export interface MetricsListenerConfig {
  readonly host: string;
  readonly port: number;
  /** The host may be other than loopback (an admin network); false by default. */
  readonly allowNonLoopback: boolean;
}

/** A non-loopback host without `allowNonLoopback`, as the problem a config check reports. */
export function metricsListenerProblems(
  field: string,
  listener: MetricsListenerConfig | undefined,
): FieldProblem[] {
  if (listener === undefined || listener.allowNonLoopback || isLoopbackHost(listener.host)) return [];
  return [
    {
      field: `${field}.host`,
      expected:
        `must be a loopback address (127.0.0.0/8, ::1 or localhost), got ${JSON.stringify(listener.host)}: ` +
        'the metrics listener is for this host and its scraper. For an admin network the internet ' +
        `cannot reach, set "${field}.allowNonLoopback": true`,
    },
  ];
}
