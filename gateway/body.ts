// Reads a request body up to a byte limit. The declared length is checked before reading a
// byte; a chunked body is counted as it arrives and the read stops at the limit.
import { isHttp2Request, type GatewayRequest } from './http-message.js';
import { errors } from '../lib/errors.js';

/**
 * Whether a request carries a body: chunked or a non-zero Content-Length on HTTP/1.x; on
 * HTTP/2 also any stream whose HEADERS did not end it, since DATA frames need no length.
 */
export function hasBody(req: GatewayRequest): boolean {
  if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) {
    return true;
  }
  return isHttp2Request(req) && req.headers['content-length'] === undefined && !req.stream.endAfterHeaders;
}

export function readBody(req: GatewayRequest, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(errors.BODY_TOO_LARGE(`Request body exceeds ${limit} bytes`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        reject(errors.BODY_TOO_LARGE(`Request body exceeds ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(errors.BAD_REQUEST('Request body could not be read', undefined, { cause: err }));
    };
    const onAborted = () => {
      cleanup();
      reject(errors.BAD_REQUEST('Client went away while sending the body'));
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/** `application/json`, optionally with parameters such as `; charset=utf-8`. */
export function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const type = value.split(';', 1)[0]!.trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/** Deepest nesting of arrays and objects a request body may have. */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether parsed JSON nests deeper than `max`. JSON.parse handles any depth, but
 * JSON.stringify (the queue's serialiser) and schema validators recurse: a 16 KB body of
 * brackets would overflow their stack. Iterative, so it cannot overflow itself.
 */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}
