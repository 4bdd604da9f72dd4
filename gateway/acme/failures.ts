// Why an ACME order failed, as one of lib/errors.ts's codes. acme-client turns the CA's problem
// documents (RFC 8555, 6.7) into plain Errors, and a request that got no answer at all into a
// TypeError (its retry interceptor reads the missing response); interceptors on its HTTP client
// keep each order's problems (status and type, or the URL that never answered) so that a rate
// limit, a CA out of reach and a refusal can be told apart.
import { AsyncLocalStorage } from 'node:async_hooks';
import acme from 'acme-client';
import { errors, isNonstopError, type NonstopError } from '../../lib/errors.js';

export type AcmePhase = 'account' | 'order' | 'challenge' | 'finalize';

export interface AcmeProblem {
  readonly status?: number;
  readonly type?: string;
  /** A request that got no answer (connection refused, timed out, a TLS error…): its URL. */
  readonly network?: string;
}

interface OrderRequests {
  readonly problems: AcmeProblem[];
  /** The URL last asked and not yet answered. */
  unanswered: string | undefined;
}

const RATE_LIMITED = 'urn:ietf:params:acme:error:rateLimited';
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
]);

const orderRequests = new AsyncLocalStorage<OrderRequests>();
let intercepting = false;

/** A list that collects the problems of what `run` does (and its HTTP requests). */
export function acmeProblems(): {
  problems: AcmeProblem[];
  run: <T>(fn: () => Promise<T>) => Promise<T>;
} {
  if (!intercepting) {
    intercepting = true;
    acme.axios.interceptors.request.use((config) => {
      const order = orderRequests.getStore();
      if (order !== undefined) order.unanswered = config.url ?? '(unknown URL)';
      return config;
    });
    acme.axios.interceptors.response.use(
      (response) => {
        const order = orderRequests.getStore();
        if (order !== undefined) order.unanswered = undefined;
        if (response.status >= 400) {
          const data: unknown = response.data;
          const type =
            typeof data === 'object' && data !== null && typeof (data as { type?: unknown }).type === 'string'
              ? (data as { type: string }).type
              : undefined;
          order?.problems.push({ status: response.status, ...(type === undefined ? {} : { type }) });
        }
        return response;
      },
      (err: unknown) => {
        const order = orderRequests.getStore();
        if (order?.unanswered !== undefined) {
          order.problems.push({ network: order.unanswered });
          order.unanswered = undefined;
        }
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }
  const order: OrderRequests = { problems: [], unanswered: undefined };
  return { problems: order.problems, run: (fn) => orderRequests.run(order, fn) };
}

/** The error to log for a failed order: rate limited, CA unreachable, challenge failed, or refused. */
export function classifyAcmeFailure(
  err: unknown,
  problems: readonly AcmeProblem[],
  phase: AcmePhase,
): NonstopError {
  if (isNonstopError(err)) return err;
  const unanswered = problems.at(-1)?.network;
  const message =
    unanswered === undefined
      ? err instanceof Error
        ? err.message
        : String(err)
      : `no answer from ${unanswered}`;
  const options = { cause: err };
  const last = problems.at(-1);
  const details = { phase, ...(last === undefined ? {} : { problem: last }) };
  if (problems.some((p) => p.status === 429 || p.type === RATE_LIMITED)) {
    return errors.ACME_RATE_LIMITED(`ACME server rate limit: ${message}`, details, options);
  }
  const code = (err as { code?: unknown }).code;
  if (
    (typeof code === 'string' && NETWORK_CODES.has(code)) ||
    problems.some((p) => p.network !== undefined || (p.status !== undefined && p.status >= 500))
  ) {
    return errors.ACME_CA_UNREACHABLE(`ACME server unreachable or failing: ${message}`, details, options);
  }
  if (phase === 'challenge') {
    return errors.ACME_CHALLENGE_FAILED(`challenge validation failed: ${message}`, details, options);
  }
  return errors.ACME_ORDER_FAILED(`ACME ${phase} refused: ${message}`, details, options);
}
