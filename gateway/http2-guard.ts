// HTTP/2 on the HTTPS listener: the SETTINGS and session bounds that keep one connection from
// asking more of the gateway than an HTTP/1.1 one could, and the guards nghttp2 leaves to us:
// rapid reset (CVE-2023-44487), a lifetime stream cap, idle sessions and slow request bodies.
// HTTP/1.1 clients (no ALPN "h2") are served by the same server with HTTP/1.1's own limits.
import {
  constants,
  type Http2SecureServer,
  type SecureServerOptions,
  type ServerHttp2Session,
} from 'node:http2';
import type { GatewayConfig, Http2Config } from '../config/schemas/gateway.js';
import type { Logger } from '../lib/log.js';

type Limits = GatewayConfig['limits'];

/** How long a session ended for abuse may take to get its GOAWAY out before it is cut. */
const GOAWAY_FLUSH_MS = 1000;

/** Pseudo-headers a request may carry (:method, :scheme, :authority, :path, :protocol). */
const PSEUDO_HEADERS = 5;

/** Options for http2.createSecureServer (TLS options are added by the caller). */
export function http2ServerOptions(h2: Http2Config, limits: Limits): SecureServerOptions {
  return {
    allowHTTP1: true,
    maxSessionMemory: h2.maxSessionMemoryMb,
    // One header more than allowed reaches the request-limits step, which answers 431 as it
    // does on HTTP/1.1; past that nghttp2 resets the stream (ENHANCE_YOUR_CALM).
    maxHeaderListPairs: limits.maxHeaders + 1 + PSEUDO_HEADERS,
    // Node's defaults are generous (1000 invalid frames, 100 rejected streams, 10 pings);
    // a client that sends invalid frames or refused streams at all is broken or hostile.
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    maxOutstandingPings: 10,
    maxSettings: 32,
    settings: {
      enablePush: false,
      maxConcurrentStreams: h2.maxConcurrentStreams,
      initialWindowSize: h2.initialWindowSize,
      // The same byte bound as HTTP/1.1's header section (nghttp2 counts 32 bytes a field
      // on top of name and value, RFC 9113 6.5.2).
      maxHeaderListSize: limits.maxHeaderBytes,
    },
  };
}

/**
 * The HTTP/1.1 fallback on an HTTP/2 server is Node's HTTP/1.1 server code reading these
 * fields from the server object; http2.createSecureServer takes none of them as options.
 */
export function http1FallbackLimits(
  server: Http2SecureServer,
  limits: Limits,
  keepAliveTimeoutMs: number,
): void {
  Object.assign(server, {
    maxHeaderSize: limits.maxHeaderBytes,
    maxHeadersCount: limits.maxHeaders + 1,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs / 2),
  });
}

export interface Http2Guard {
  /** Sessions open now. */
  readonly sessions: number;
  /** GOAWAY to every session (streams in flight finish); for shutdown. */
  closeSessions(): void;
}

export function guardSessions(
  server: Http2SecureServer,
  h2: Http2Config,
  limits: Limits,
  log: Logger,
): Http2Guard {
  const open = new Set<ServerHttp2Session>();
  server.on('session', (session) => {
    open.add(session);
    session.once('close', () => open.delete(session));
    guard(session, h2, limits, log);
  });
  server.on('sessionError', (err: NodeJS.ErrnoException) =>
    log.debug({ code: err.code }, 'HTTP/2 session error'),
  );
  return {
    get sessions() {
      return open.size;
    },
    closeSessions() {
      for (const session of open) session.close();
    },
  };
}

function guard(session: ServerHttp2Session, h2: Http2Config, limits: Limits, log: Logger): void {
  const clientIp = session.socket.remoteAddress;
  let streams = 0;
  let resets = 0;
  let windowStart = Date.now();
  let ended = false;
  session.on('error', (err: NodeJS.ErrnoException) =>
    log.debug({ code: err.code, clientIp }, 'HTTP/2 session error'),
  );
  // Until its first request a session has an HTTP/1.1 connection's header timeout; then the
  // idle timeout. Node's session timeout counts from the last frame either way; on it the
  // session says GOAWAY and ends when its open streams do (each has its own deadline below).
  session.setTimeout(limits.headersTimeoutMs);
  session.on('timeout', () => session.close());

  const endSession = (reason: string, code: number) => {
    if (ended) return;
    ended = true;
    log.warn({ clientIp, streams, resets, reason }, 'HTTP/2 session ended');
    // GOAWAY with the code, then the connection closes: the streams this client left open
    // are dropped with it. Destroying at once loses the GOAWAY whenever answers are still being
    // written (Node sends nothing new while a write is in flight), so the connection is closed
    // once the frame has left, or after GOAWAY_FLUSH_MS from a client that does not read.
    session.goaway(code);
    const since = Date.now();
    const closeWhenFlushed = () => {
      if (session.destroyed) return;
      const flushed = session.state.outboundQueueSize === 0 && session.socket.writableLength === 0;
      // Node's destroy() sends a final GOAWAY too, with this code only when given an error.
      if (flushed || Date.now() - since >= GOAWAY_FLUSH_MS) session.destroy(new Error(reason), code);
      else setTimeout(closeWhenFlushed, 5);
    };
    setImmediate(closeWhenFlushed);
  };

  session.on('stream', (stream) => {
    streams++;
    if (streams === 1) session.setTimeout(h2.idleTimeoutMs);
    if (streams >= h2.maxStreamsPerSession && !session.closed) {
      // Graceful: this stream and those open are answered, new ones go to a new connection.
      session.close();
    }
    // A stream its client resets before the answer has left: counted, and too many in a second
    // end the session. Each costs the gateway a request's work while costing the client one
    // frame, and a reset stream no longer counts against SETTINGS_MAX_CONCURRENT_STREAMS.
    // Counted from the close code, not the 'aborted' event: an answer the gateway wrote at once
    // (a 404, a 429) has ended the stream's writable side before the client's RST_STREAM from
    // the same read is processed, and Node emits 'aborted' only while that side is open.
    let resetHere = false;
    const deadline = setTimeout(() => {
      // HTTP/1.1's requestTimeout: the whole request (headers and body) within requestTimeoutMs.
      // Waiting for the application's answer afterwards is the reply deadline's business.
      if (stream.closed || stream.endAfterHeaders || stream.readableEnded) return;
      if (!stream.headersSent) {
        stream.respond({ ':status': 408, 'content-length': '0' }, { endStream: true });
      }
      resetHere = true;
      stream.close(constants.NGHTTP2_CANCEL);
    }, limits.requestTimeoutMs);
    deadline.unref();
    stream.once('close', () => {
      clearTimeout(deadline);
      if (resetHere || ended || stream.rstCode === constants.NGHTTP2_NO_ERROR) return;
      const now = Date.now();
      if (now - windowStart >= 1000) {
        windowStart = now;
        resets = 0;
      }
      resets++;
      if (resets > h2.maxResetsPerSecond) endSession('rapid reset', constants.NGHTTP2_ENHANCE_YOUR_CALM);
    });
  });
}
