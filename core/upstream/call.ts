// One HTTP call to an upstream application and its answer as the core stores it: status,
// headers lowercased without hop-by-hop ones, each Set-Cookie a cookie, a JSON body parsed and
// any other kept as content with its type. A failure is an answer too (502/504, lib/errors.ts):
// the call may have had its effect, so it is stored and replayed, never retried.
import http from 'node:http';
import https from 'node:https';
import type { Envelope } from '../../lib/envelope.js';
import { errors, isNonstopError, type NonstopError } from '../../lib/errors.js';
import { errorAnswer, toStoredResponse, type StoredResponse } from '../response.js';
import { isHopByHop, upstreamRequest } from './request.js';
import type { UpstreamTarget } from './targets.js';

/** Headers the reply carries elsewhere (content type, cookies) or that the gateway sets itself. */
const NOT_KEPT = new Set(['content-type', 'content-length', 'set-cookie', 'date']);
const HEADER_NAME = /^[a-z0-9-]{1,64}$/;
const MAX_HEADERS = 32;

export interface CallOutcome {
  readonly response: StoredResponse;
  /** The error code when the call failed (for the log), else undefined. */
  readonly failure?: string;
}

export async function callUpstream(
  target: UpstreamTarget,
  envelope: Envelope,
  timeoutMs: number,
): Promise<CallOutcome> {
  try {
    const answer = await send(target, envelope, timeoutMs);
    return { response: answer };
  } catch (err) {
    const failure = asFailure(err);
    return {
      response: errorAnswer(failure),
      failure: failure.code,
    };
  }
}

function send(target: UpstreamTarget, envelope: Envelope, timeoutMs: number): Promise<StoredResponse> {
  const request = upstreamRequest(envelope);
  const base = target.url.pathname.replace(/\/+$/, '');
  const url = new URL(`${target.url.origin}${base}${request.target}`);
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const req = lib.request(
      url,
      { method: request.method, headers: request.headers, agent: target.agent },
      (res) => {
        const limit = target.maxResponseBytes;
        const tooLarge = () => {
          finish(() => reject(errors.UPSTREAM_ANSWER_TOO_LARGE(`the answer exceeds ${limit} bytes`)));
          res.destroy();
        };
        if (Number(res.headers['content-length'] ?? 0) > limit) return tooLarge();
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) return tooLarge();
          chunks.push(chunk);
        });
        res.on('error', (err) => finish(() => reject(err)));
        res.on('aborted', () => finish(() => reject(new Error('the answer was cut off'))));
        res.on('end', () =>
          finish(() => {
            try {
              resolve(answer(res, Buffer.concat(chunks)));
            } catch (err) {
              reject(errors.UPSTREAM_FAILED(`the answer cannot be carried: ${(err as Error).message}`));
            }
          }),
        );
      },
    );
    const timer = setTimeout(() => {
      finish(() => reject(errors.UPSTREAM_TIMEOUT(`no complete answer within ${timeoutMs} ms`)));
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) => finish(() => reject(err)));
    req.end(request.body);
  });
}

function answer(res: http.IncomingMessage, raw: Buffer): StoredResponse {
  const headers: Record<string, string> = {};
  let kept = 0;
  for (const [name, value] of Object.entries(res.headers)) {
    if (NOT_KEPT.has(name) || isHopByHop(name) || !HEADER_NAME.test(name) || value === undefined) continue;
    const text = Array.isArray(value) ? value.join(', ') : value;
    if (/[\r\n]/.test(text) || text.length > 8192 || kept >= MAX_HEADERS) continue;
    headers[name] = text;
    kept += 1;
  }
  const setCookie = res.headers['set-cookie'];
  const type = res.headers['content-type'];
  let body: unknown = null;
  let content: { type: string; data: Uint8Array } | undefined;
  if (raw.length > 0) {
    const json = isJson(type) ? parseJson(raw) : undefined;
    if (json !== undefined) body = json.value;
    else content = { type: type ?? 'application/octet-stream', data: raw };
  }
  return toStoredResponse({
    status: res.statusCode,
    headers,
    body,
    content,
    cookies: setCookie === undefined || setCookie.length === 0 ? undefined : setCookie,
  });
}

function isJson(type: string | undefined): boolean {
  return (type ?? '').split(';')[0]!.trim().toLowerCase() === 'application/json';
}

function parseJson(raw: Buffer): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(raw.toString('utf8')) as unknown };
  } catch {
    return undefined;
  }
}

function asFailure(err: unknown): NonstopError {
  if (err instanceof Error && 'code' in err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (
      code === 'ECONNREFUSED' ||
      code === 'EHOSTUNREACH' ||
      code === 'ENETUNREACH' ||
      code === 'ENOTFOUND'
    ) {
      return errors.UPSTREAM_UNREACHABLE(`the application is not reachable (${code})`);
    }
  }
  if (isNonstopError(err)) return err;
  return errors.UPSTREAM_FAILED(`the call failed: ${err instanceof Error ? err.message : String(err)}`);
}
