// Start-time checks of a gateway's clientAddress section that its schema cannot express: every
// trusted proxy is a CIDR prefix, and a listener in PROXY mode has someone to trust.
import { errors } from '../lib/errors.js';
import { parseCidr } from '../lib/ip-prefix.js';
import type { GatewayConfig } from './schemas/gateway.js';

/** The part of a gateway config checked here (a renderer's input has no more than this). */
interface Checked {
  readonly clientAddress: Pick<GatewayConfig['clientAddress'], 'trustedProxies'>;
  readonly http?: { readonly proxyProtocol?: boolean } | undefined;
  readonly https?: { readonly proxyProtocol?: boolean } | undefined;
}

/** Throws CONFIG_INVALID naming `file` and each field at fault (all of them at once). */
export function checkClientAddress(file: string, config: Checked): void {
  const problems = clientAddressProblems(config);
  if (problems.length > 0) {
    throw errors.CONFIG_INVALID(problems.map((p) => `${file}: field "${p.field}" ${p.expected}`).join('\n'));
  }
}

export function clientAddressProblems(config: Checked): { field: string; expected: string }[] {
  const problems: { field: string; expected: string }[] = [];
  const trusted = config.clientAddress.trustedProxies;
  trusted.forEach((entry, i) => {
    const parsed = parseCidr(entry);
    if ('error' in parsed) {
      problems.push({
        field: `clientAddress.trustedProxies[${i}]`,
        expected: `must be a CIDR prefix like "198.18.0.0/15" or an address (${JSON.stringify(entry)}: ${parsed.error})`,
      });
    }
  });
  for (const listener of ['http', 'https'] as const) {
    if (config[listener]?.proxyProtocol === true && trusted.length === 0) {
      problems.push({
        field: `${listener}.proxyProtocol`,
        expected: 'needs clientAddress.trustedProxies: with none, every connection would be closed',
      });
    }
  }
  return problems;
}
