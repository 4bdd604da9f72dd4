// Sends validated requests to the core over HTTPS with mutual TLS. Connections are kept
// alive and reused. A failed attempt is retried with backoff until the request's deadline,
// always with the same idempotency key, so the core applies it at most once. With several core
// hosts (`core.url` and `core.peers`, one database) attempts go round the ones not marked down;
// one that fails an attempt is marked down for a while (longer each time) and the retry goes to
// another at once. Exactly once holds across them: the request table is the database's.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import https from 'node:https';
import type { BrokerConfig } from '../config/schemas/broker.js';
import {
  BUDGET_HEADER,
  EXECUTE_PATH,
  IDEMPOTENCY_HEADER,
  MAX_BUDGET_MS,
  parseCoreAnswer,
  REPLAYED_HEADER,
  type CoreAnswer as AppAnswer,
} from '../lib/core-protocol.js';
import { MAX_REPLY_BYTES, type Envelope } from '../lib/envelope.js';
import { errors } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';

/** The application's response, checked (lib/core-protocol.ts), and whether it was a replay. */
export interface CoreAnswer extends AppAnswer {
  readonly replayed: boolean;
}

type Attempt =
  | { readonly kind: 'answer'; readonly answer: CoreAnswer }
  | { readonly kind: 'retry'; readonly reason: string }
  | { readonly kind: 'fail'; readonly status: number; readonly code: string; readonly reason: string };

/** No answer larger than a reply can be is read to its end: it could not be carried (502). */
const MAX_RESPONSE_BYTES = MAX_REPLY_BYTES;

/** Down after a failed attempt for this long at first, doubling to DOWN_MAX_MS. */
const DOWN_FIRST_MS = 250;
const DOWN_MAX_MS = 5000;

interface Endpoint {
  readonly url: URL;
  /** Consecutive failed attempts. */
  failures: number;
  /** Not picked before this (epoch ms) while another is up. */
  downUntil: number;
}

/** How often the broker looks at its TLS files for a rotation (README, "Rotating credentials"). */
export const TLS_RECHECK_MS = 5000;
/** How long a replaced agent's connections may finish what they carry before they are closed. */
const RETIRED_AGENT_MS = 60_000;

export class CoreClient {
  private agent: https.Agent;
  private tlsFiles: string;
  private readonly recheck: NodeJS.Timeout;
  private readonly endpoints: Endpoint[];
  private turn = 0;

  constructor(
    private readonly config: BrokerConfig['core'],
    private readonly log: Logger,
  ) {
    const urls = [...new Set([config.url, ...(config.peers ?? [])])];
    this.endpoints = urls.map((u) => ({ url: new URL(EXECUTE_PATH, u), failures: 0, downUntil: 0 }));
    const files = this.readTlsFiles();
    this.tlsFiles = files.digest;
    this.agent = this.newAgent(files);
    this.recheck = setInterval(() => this.reloadTlsIfChanged(), TLS_RECHECK_MS);
    this.recheck.unref();
  }

  private readTlsFiles(): { ca: Buffer; cert: Buffer; key: Buffer; digest: string } {
    const ca = readFileSync(this.config.ca);
    const cert = readFileSync(this.config.cert);
    const key = readFileSync(this.config.key);
    return { ca, cert, key, digest: createHash('sha256').update(ca).update(cert).update(key).digest('hex') };
  }

  private newAgent(files: { ca: Buffer; cert: Buffer; key: Buffer }): https.Agent {
    return new https.Agent({
      keepAlive: true,
      maxSockets: this.config.maxSockets,
      ca: files.ca,
      cert: files.cert,
      key: files.key,
      ...(this.config.serverName === undefined ? {} : { servername: this.config.serverName }),
      minVersion: 'TLSv1.3',
    });
  }

  /**
   * A rotated CA bundle, certificate or key: new requests go through a new agent with them;
   * the old agent's connections finish what they carry, then close. Files that fail to read or
   * to load keep the ones in use.
   */
  reloadTlsIfChanged(): boolean {
    let files;
    let agent;
    try {
      files = this.readTlsFiles();
      if (files.digest === this.tlsFiles) return false;
      // Loads them now, so that a bad key or certificate is refused here, not on a request.
      tls.createSecureContext({ ca: files.ca, cert: files.cert, key: files.key });
      agent = this.newAgent(files);
    } catch (err) {
      this.log.error(
        { err: (err as Error).message },
        'cannot load the TLS files again; keeping the ones in use',
      );
      return false;
    }
    const retired = this.agent;
    this.agent = agent;
    this.tlsFiles = files.digest;
    setTimeout(() => retired.destroy(), RETIRED_AGENT_MS).unref();
    this.log.info(
      { ca: this.config.ca, cert: this.config.cert },
      'TLS files changed; new connections to the core use them',
    );
    return true;
  }

  /** The next endpoint not marked down, in turn; if every one is, the one back soonest. */
  private pick(now = Date.now()): Endpoint {
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const e = this.endpoints[(this.turn + i) % n]!;
      if (e.downUntil <= now) {
        this.turn = (this.turn + i + 1) % n;
        return e;
      }
    }
    return this.endpoints.reduce((a, b) => (b.downUntil < a.downUntil ? b : a));
  }

  private anotherUp(than: Endpoint, now = Date.now()): boolean {
    return this.endpoints.some((e) => e !== than && e.downUntil <= now);
  }

  /**
   * Executes an envelope at the core; the answer is the application's response. `deadline` is
   * the envelope's in this host's clock (the worker converts it from the queue's); each attempt
   * tells the core how long is left (BUDGET_HEADER), not when.
   */
  async execute(envelope: Envelope, deadline = envelope.deadline): Promise<CoreAnswer> {
    const payload = JSON.stringify(envelope);
    let backoff = 50;
    for (let attempt = 1; ; attempt++) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw errors.CORE_UNAVAILABLE(`No answer from the core before the deadline`);
      const endpoint = this.pick();
      const result = await this.attempt(
        endpoint.url,
        envelope.id,
        payload,
        Math.min(this.config.attemptTimeoutMs, remaining),
        remaining,
      );
      if (result.kind !== 'retry') endpoint.failures = 0;
      if (result.kind === 'answer') return result.answer;
      if (result.kind === 'fail') throw errorFor(result);
      endpoint.failures++;
      endpoint.downUntil = Date.now() + Math.min(DOWN_FIRST_MS * 2 ** (endpoint.failures - 1), DOWN_MAX_MS);
      const failover = this.anotherUp(endpoint);
      this.log.warn(
        { requestId: envelope.id, attempt, core: endpoint.url.host, reason: result.reason, failover },
        'core attempt failed; retrying',
      );
      // Another core host is up: try it now. Else wait, as for a single core.
      if (failover) continue;
      const wait = Math.min(backoff * (0.5 + Math.random()), deadline - Date.now());
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      backoff = Math.min(backoff * 2, 2000);
    }
  }

  close(): void {
    clearInterval(this.recheck);
    this.agent.destroy();
  }

  private attempt(
    url: URL,
    id: string,
    payload: string,
    timeoutMs: number,
    budgetMs: number,
  ): Promise<Attempt> {
    return new Promise((resolve) => {
      const req = https.request(
        url,
        {
          method: 'POST',
          agent: this.agent,
          timeout: timeoutMs,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
            [IDEMPOTENCY_HEADER]: id,
            [BUDGET_HEADER]: String(Math.min(Math.max(1, Math.ceil(budgetMs)), MAX_BUDGET_MS)),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_RESPONSE_BYTES) {
              res.destroy();
              resolve({ kind: 'fail', status: 502, code: 'oversized', reason: 'core answer too large' });
              return;
            }
            chunks.push(chunk);
          });
          res.on('error', (err) => resolve({ kind: 'retry', reason: err.message }));
          res.on('end', () =>
            resolve(interpret(id, res.statusCode ?? 0, res.headers, Buffer.concat(chunks))),
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (err) => resolve({ kind: 'retry', reason: err.message }));
      req.end(payload);
    });
  }
}

function interpret(id: string, status: number, headers: Record<string, unknown>, raw: Buffer): Attempt {
  let data: unknown;
  try {
    data = JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    return status >= 500 ? { kind: 'retry', reason: `core answered ${status}` } : badAnswer(status);
  }
  if (status === 200) {
    const parsed = parseCoreAnswer(data, id);
    if (!parsed.ok) return badAnswer(status, parsed.error);
    return { kind: 'answer', answer: { ...parsed.value, replayed: headers[REPLAYED_HEADER] === '1' } };
  }
  const code = errorCode(data);
  if (status === 503 || status === 502) return { kind: 'retry', reason: `core answered ${status} ${code}` };
  return { kind: 'fail', status, code, reason: `core answered ${status} ${code}` };
}

function badAnswer(status: number, why?: string): Attempt {
  const detail = why === undefined ? '' : `: ${why}`;
  return {
    kind: 'fail',
    status: 502,
    code: 'malformed',
    reason: `core sent a malformed answer (${status})${detail}`,
  };
}

function errorCode(data: unknown): string {
  const e = (data as { error?: { code?: unknown } } | null)?.error;
  return typeof e?.code === 'string' ? e.code : 'unknown';
}

function errorFor(result: Extract<Attempt, { kind: 'fail' }>) {
  // An answer bigger than any reply can be: the same 502 the reply bound gives (gateway-worker.ts).
  if (result.code === 'oversized') return errors.ANSWER_TOO_LARGE();
  if (result.status === 504) return errors.CORE_UNAVAILABLE('The core refused the request: deadline passed');
  if (result.status === 500) return errors.INTERNAL('The core could not complete the request');
  // The client reused its Idempotency-Key for another request: tell it so, with the core's code.
  if (result.status === 422 && result.code === errors.IDEMPOTENCY_KEY_REUSED.code) {
    return errors.IDEMPOTENCY_KEY_REUSED();
  }
  return errors.INTERNAL(`The core rejected the request (${result.reason})`);
}
