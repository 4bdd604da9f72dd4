// GET /.well-known/acme-challenge/<token> (RFC 8555, 8.3): the key authorization of a live
// HTTP-01 challenge, from the challenge store (this gateway's own or one relayed from another
// gateway behind the name). Runs first, before rate limits and the queue, and on port 80 in
// every mode: in redirect mode it is the one path that is answered rather than redirected.
import type { ChallengeStore } from '../acme/challenges.js';
import type { GatewayRequest, GatewayResponse } from '../http-message.js';
import { ANSWERED, type Exchange, type Step } from './exchange.js';

export const ACME_CHALLENGE_PREFIX = '/.well-known/acme-challenge/';
/** Tokens are base64url (RFC 8555, 8.1); anything else is not looked up. */
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

export function acmeChallenge(store: ChallengeStore | undefined): Step<Exchange> {
  if (store === undefined) return () => undefined;
  return async ({ req, res, path }) =>
    (await answerChallenge(store, req, res, path)) ? ANSWERED : undefined;
}

/** True when the request was for the challenge path (and has been answered, 200 or 404). */
export async function answerChallenge(
  store: ChallengeStore,
  req: GatewayRequest,
  res: GatewayResponse,
  path: string,
): Promise<boolean> {
  if (!path.startsWith(ACME_CHALLENGE_PREFIX)) return false;
  const token = path.slice(ACME_CHALLENGE_PREFIX.length);
  const answer =
    (req.method === 'GET' || req.method === 'HEAD') && TOKEN.test(token)
      ? await store.httpAnswer(token)
      : undefined;
  const body = answer ?? 'no such challenge\n';
  res.writeHead(answer === undefined ? 404 : 200, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  if (req.method === 'HEAD') res.end();
  else res.end(body);
  return true;
}
