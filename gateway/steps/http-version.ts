// HTTP/1.0, 1.1 and (on the HTTPS listener) 2 are served; a message's framing must be one a
// proxy in front could not read differently (request smuggling).
import { errors } from '../../lib/errors.js';
import { HOP_BY_HOP, isHttp2Request } from '../http-message.js';
import { refusal, type Exchange, type StepResult } from './exchange.js';

export function httpVersion({ req }: Exchange): StepResult {
  if (isHttp2Request(req)) {
    // nghttp2 already resets streams with connection-specific headers, a `te` other than
    // "trailers" or a content-length that disagrees with the DATA; this holds if it ever
    // stops. A downgrading proxy would otherwise turn them into HTTP/1.1 framing.
    if (HOP_BY_HOP.some((name) => req.headers[name] !== undefined)) {
      return refusal(errors.BAD_REQUEST('Connection-specific header in an HTTP/2 request'));
    }
    const te = req.headers.te;
    if (te !== undefined && te !== 'trailers') return refusal(errors.BAD_REQUEST('TE other than trailers'));
    // No tunnels: CONNECT (and extended CONNECT, RFC 8441) has no route here.
    if (req.method === 'CONNECT') return refusal(errors.METHOD_NOT_ALLOWED('CONNECT is not served'));
    return undefined;
  }
  // HTTP/0.9 (a bare `GET /path`) carries no headers at all.
  if (req.httpVersionMajor !== 1) return refusal(errors.BAD_REQUEST('Only HTTP/1.0, HTTP/1.1 and HTTP/2'));
  // HTTP/1.0 has no chunked framing: such a message's framing is faulty (RFC 9112, 6.1), and a
  // proxy in front could frame it differently (request smuggling).
  if (req.httpVersionMinor === 0 && req.headers['transfer-encoding'] !== undefined) {
    return refusal(errors.BAD_REQUEST('Transfer-Encoding in an HTTP/1.0 request'), { connection: 'close' });
  }
  return undefined;
}
