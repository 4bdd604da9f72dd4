// Room for one more waiting request, and a queue to put it on; otherwise 503 at once.
import { errors } from '../../lib/errors.js';
import type { JobQueue } from '../queue-set.js';
import type { ReplyWaiter } from '../reply-waiter.js';
import { refusal, type Routed, type Step } from './exchange.js';

const RETRY_AFTER_SECONDS = '5';

export function capacity(queue: JobQueue, replies: ReplyWaiter, maxPending: number): Step<Routed> {
  return () => {
    if (replies.pending >= maxPending) {
      return refusal(errors.QUEUE_UNAVAILABLE('Gateway is at capacity'), { 'retry-after': '1' });
    }
    if (!queue.ready || !replies.connected) {
      return refusal(errors.QUEUE_UNAVAILABLE(), { 'retry-after': RETRY_AFTER_SECONDS });
    }
    return undefined;
  };
}
