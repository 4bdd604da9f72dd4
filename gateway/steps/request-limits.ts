// The URL's length and the number of headers, before routing.
import type { GatewayConfig } from '../../config/schemas/gateway.js';
import { errors } from '../../lib/errors.js';
import { refusal, type Exchange, type Step } from './exchange.js';

const MAX_URL_LENGTH = 8192;

export function requestLimits(limits: GatewayConfig['limits']): Step<Exchange> {
  return ({ req, url }) => {
    if (url.length > MAX_URL_LENGTH) return refusal(errors.URI_TOO_LONG());
    if (headerCount(req.rawHeaders) > limits.maxHeaders) {
      return refusal(errors.HEADERS_TOO_LARGE(`More than ${limits.maxHeaders} headers`));
    }
    return undefined;
  };
}

/** Header fields in a raw name/value list; HTTP/2's pseudo-headers (`:path`…) are not headers. */
function headerCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (!raw[i]!.startsWith(':')) n++;
  return n;
}
