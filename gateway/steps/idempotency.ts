// An Idempotency-Key, scoped to the client's identity headers: the same key from another
// identity is another request, never the stored answer of this one.
import { errors } from '../../lib/errors.js';
import { IDEMPOTENCY_KEY_HEADER, parseIdempotencyKey, type IdempotencyScope } from '../idempotency-key.js';
import { refusal, type Routed, type Step } from './exchange.js';

export function idempotency(scope: IdempotencyScope | undefined): Step<Routed> {
  return (x) => {
    const key = parseIdempotencyKey(x.req.headers[IDEMPOTENCY_KEY_HEADER]);
    if (key === undefined) return undefined;
    if (scope === undefined) return refusal(errors.IDEMPOTENCY_UNAVAILABLE());
    // The identity is what the application sees: the route's cookies, not those dropped.
    const { cookie: _sent, ...headers } = x.req.headers;
    x.keyed = scope.keyed(key, x.cookie === undefined ? headers : { ...headers, cookie: x.cookie });
    return undefined;
  };
}
