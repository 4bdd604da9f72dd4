// Small HTTP helpers for the core's server: bounded body reading and JSON answers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors, type NonstopError } from '../lib/errors.js';

/** Reads the whole body, or rejects with BODY_TOO_LARGE as soon as it passes `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      reject(errors.BODY_TOO_LARGE(`the body exceeds ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        reject(errors.BODY_TOO_LARGE(`the body exceeds ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

export function sendError(res: ServerResponse, err: NonstopError): void {
  const status = err.status ?? 500;
  // A request whose body was refused is not read to its end; closing is the only clean way on.
  const headers: Record<string, string> = status === 413 ? { connection: 'close' } : {};
  sendJson(res, status, { error: { code: err.code, message: err.message } }, headers);
}
