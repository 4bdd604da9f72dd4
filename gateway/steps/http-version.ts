// Only HTTP/1.0 and 1.1 are served, and an HTTP/1.0 message never carries chunked framing.
import { errors } from '../../lib/errors.js';
import { refusal, type Exchange, type StepResult } from './exchange.js';

export function httpVersion({ req }: Exchange): StepResult {
  // HTTP/0.9 (a bare `GET /path`) carries no headers at all.
  if (req.httpVersionMajor !== 1) return refusal(errors.BAD_REQUEST('Only HTTP/1.0 and HTTP/1.1'));
  // HTTP/1.0 has no chunked framing: such a message's framing is faulty (RFC 9112, 6.1), and a
  // proxy in front could frame it differently (request smuggling).
  if (req.httpVersionMinor === 0 && req.headers['transfer-encoding'] !== undefined) {
    return refusal(errors.BAD_REQUEST('Transfer-Encoding in an HTTP/1.0 request'), { connection: 'close' });
  }
  return undefined;
}
