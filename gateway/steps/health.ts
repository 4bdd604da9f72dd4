// GET /healthz (the process is up) and GET /readyz (its queue and reply connections are).
import type { ReplyWaiter } from '../reply-waiter.js';
import type { JobQueue } from '../queue-set.js';
import { sendJson } from '../respond.js';
import { ANSWERED, type Exchange, type Step } from './exchange.js';

export function health(queue: JobQueue, replies: ReplyWaiter): Step<Exchange> {
  return ({ req, res, path }) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return undefined;
    if (path === '/healthz') {
      sendJson(res, 200, { ok: true });
      return ANSWERED;
    }
    if (path === '/readyz') {
      const ready = queue.ready && replies.connected;
      sendJson(res, ready ? 200 : 503, { ready, queue: queue.ready, replies: replies.connected });
      return ANSWERED;
    }
    return undefined;
  };
}
