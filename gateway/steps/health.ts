// GET /healthz (the process is up) and GET /readyz (its queue and reply connections are, and,
// with ACME, an unexpired certificate is served).
import type { CertificateReadiness } from '../acme/manager.js';
import type { ReplyWaiter } from '../reply-waiter.js';
import type { JobQueue } from '../queue-set.js';
import { sendJson } from '../respond.js';
import { ANSWERED, type Exchange, type Step } from './exchange.js';

export function health(
  queue: JobQueue,
  replies: ReplyWaiter,
  certificate?: { readiness(): CertificateReadiness },
): Step<Exchange> {
  return ({ req, res, path }) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return undefined;
    if (path === '/healthz') {
      sendJson(res, 200, { ok: true });
      return ANSWERED;
    }
    if (path === '/readyz') {
      const cert = certificate?.readiness();
      const ready = queue.ready && replies.connected && cert?.ok !== false;
      sendJson(res, ready ? 200 : 503, {
        ready,
        queue: queue.ready,
        replies: replies.connected,
        ...(cert === undefined ? {} : { certificate: cert }),
      });
      return ANSWERED;
    }
    return undefined;
  };
}
