// A listener in PROXY protocol mode: every connection must come from a trusted proxy and start
// with a PROXY header (lib/proxy-protocol.ts), read here on the raw TCP socket before the server's
// own connection handling (TLS, HTTP) sees a byte; that handling then gets the bytes after it.
import type { Server, Socket } from 'node:net';
import type { AddressSet } from '../lib/ip-prefix.js';
import type { Logger } from '../lib/log.js';
import { parseProxyHeader, V2_DEFAULT_MAX_BYTES } from '../lib/proxy-protocol.js';

/**
 * The client address a PROXY header named, per live connection. Keyed by the connection's
 * addresses rather than the socket object, so that whatever wraps the socket (a TLSSocket, an
 * HTTP/2 session) finds it from its own `req.socket`.
 */
export class ProxiedConnections {
  private readonly clients = new Map<string, string>();

  set(socket: Socket, client: string): void {
    const key = connectionKey(socket);
    this.clients.set(key, client);
    socket.once('close', () => this.clients.delete(key));
  }

  get(socket: ConnectionEnds): string | undefined {
    return this.clients.size === 0 ? undefined : this.clients.get(connectionKey(socket));
  }

  get size(): number {
    return this.clients.size;
  }
}

type ConnectionEnds = Pick<Socket, 'localAddress' | 'localPort' | 'remoteAddress' | 'remotePort'>;

function connectionKey(s: ConnectionEnds): string {
  return `${s.localAddress}|${s.localPort}|${s.remoteAddress}|${s.remotePort}`;
}

export interface ProxyListenerOptions {
  /** Names the listener in logs ("http", "https"). */
  readonly listener: string;
  readonly trusted: AddressSet;
  readonly headerTimeoutMs: number;
  readonly connections: ProxiedConnections;
  readonly log: Logger;
  readonly maxV2Bytes?: number;
}

/**
 * Puts `server` in PROXY mode. Call it after the server has its own 'connection' listeners (a
 * TLS or HTTP server has them from its constructor) and before it listens: they run only once a
 * connection's header is read. A connection from an address outside `trusted`, without a valid
 * header, or too slow to send one is closed.
 */
export function requireProxyHeader(server: Server, options: ProxyListenerOptions): void {
  const inner = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    readProxyHeader(socket, options, () => {
      for (const listener of inner) listener.call(server, socket);
    });
  });
}

function readProxyHeader(socket: Socket, options: ProxyListenerOptions, handOn: () => void): void {
  const { log, listener } = options;
  const peer = socket.remoteAddress;
  if (!options.trusted.has(peer)) {
    log.info({ listener, peer }, 'PROXY listener: connection from an untrusted address closed');
    socket.destroy();
    return;
  }
  const maxV2Bytes = options.maxV2Bytes ?? V2_DEFAULT_MAX_BYTES;
  let received: Buffer = Buffer.alloc(0);
  const refuse = (reason: string) => {
    stop();
    log.warn({ listener, peer, reason }, 'PROXY listener: connection without a valid header closed');
    socket.destroy();
  };
  const timer = setTimeout(
    () => refuse(`no header within ${options.headerTimeoutMs} ms`),
    options.headerTimeoutMs,
  );
  const onError = (err: Error) => {
    stop();
    log.debug({ listener, peer, err: err.message }, 'PROXY listener: connection failed before its header');
    socket.destroy();
  };
  const onEnd = () => refuse('closed before its header');
  const onData = (chunk: Buffer) => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    const parsed = parseProxyHeader(received, maxV2Bytes);
    if (parsed.state === 'more') return;
    if (parsed.state === 'invalid') return refuse(parsed.reason);
    stop();
    // What came after the header goes back for the server's own reader (TLS, HTTP) to take.
    socket.pause();
    if (received.length > parsed.length) socket.unshift(received.subarray(parsed.length));
    const { header } = parsed;
    if (header.kind === 'tcp4' || header.kind === 'tcp6')
      options.connections.set(socket, header.source.address);
    handOn();
    // An HTTP server reads the socket as a stream ('data'), which pause() holds: let it flow. A
    // TLS server takes the socket's handle and drains what is buffered itself.
    if (socket.listenerCount('data') > 0) socket.resume();
  };
  function stop() {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', onError);
    socket.off('end', onEnd);
  }
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('end', onEnd);
}
