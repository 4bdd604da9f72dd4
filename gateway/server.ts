// Starts a gateway: HTTPS (and HTTP, redirecting or serving) listeners in front of the
// request handler, the queue connection and this process's reply list.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type Http2SecureServer } from 'node:http2';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { redisEndpoints, type GatewayConfig } from '../config/schemas/gateway.js';
import { checkStaticMounts } from '../config/static-mounts.js';
import type { RoutesConfig } from '../config/schemas/routes.js';
import { replyKey } from '../lib/envelope.js';
import { errors } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { createRedis } from '../lib/redis.js';
import { createRequestHandler } from './handler.js';
import type { GatewayRequest, GatewayResponse } from './http-message.js';
import { guardSessions, http1FallbackLimits, http2ServerOptions, type Http2Guard } from './http2-guard.js';
import { IdempotencyScope } from './idempotency-key.js';
import { readIdempotencySecret } from './idempotency-secret.js';
import { ReplyWaiter } from './reply-waiter.js';
import { QueueSet } from './queue-set.js';
import { RequestQueue } from './request-queue.js';
import { Router } from './router.js';
import { StaticFiles } from './static-files.js';
import { hstsHeader, tlsProfileOptions } from './tls-profile.js';

export interface Gateway {
  readonly instanceId: string;
  readonly http: AddressInfo | undefined;
  readonly https: AddressInfo | undefined;
  /** Re-reads the certificate and key (SIGHUP); keeps the old ones if the new ones fail. */
  reloadTls(): void;
  close(): Promise<void>;
}

export async function startGateway(
  config: GatewayConfig,
  routes: RoutesConfig,
  log: Logger,
): Promise<Gateway> {
  if (config.http.mode === 'redirect' && config.https === undefined) {
    throw errors.CONFIG_INVALID(
      'gateway: field "http.mode" is "redirect" but no "https" listener is configured',
    );
  }
  // Config problems first, before any connection is made.
  const hsts = config.https === undefined ? '' : hstsHeader(config.https.hsts);
  checkStaticMounts('gateway', config.static, routes);
  const statics = new StaticFiles(config.static, log);
  const secretFile = config.idempotency.secretFile;
  const idempotency =
    secretFile === undefined
      ? undefined
      : new IdempotencyScope(readIdempotencySecret(secretFile), config.idempotency.identityHeaders);
  if (idempotency === undefined) {
    log.warn(
      { field: 'idempotency.secretFile' },
      'no idempotency secret configured: requests with an Idempotency-Key are refused (501)',
    );
  }
  const instanceId = randomUUID();
  const endpoints = redisEndpoints(config.redis);
  const queue = new QueueSet(
    endpoints.map((e) => RequestQueue.connect(e, config.id, instanceId, log)),
    endpoints.map((e) => `${e.host}:${e.port}`),
    log,
  );
  const replies = new ReplyWaiter(
    endpoints.map((e, i) =>
      createRedis(e, 'blocking', `nonstop-gw-${config.id}-${instanceId}-replies-${i}`, log, {
        readyCheck: false,
      }),
    ),
    replyKey(config.redis.prefix, config.id, instanceId),
    log,
  );
  replies.start();
  const handler = createRequestHandler({
    config,
    router: new Router(routes),
    routes,
    queue,
    replies,
    instanceId,
    log,
    idempotency,
    staticFiles: statics,
  });

  const serverOptions = {
    maxHeaderSize: config.limits.maxHeaderBytes,
    headersTimeout: config.limits.headersTimeoutMs,
    requestTimeout: config.limits.requestTimeoutMs,
    keepAliveTimeout: 5000,
    // Node checks the header and request timeouts only this often; the default (30 s) would
    // let a slow-loris connection hold a socket far past headersTimeout.
    connectionsCheckingInterval: Math.min(1000, config.limits.headersTimeoutMs / 2),
  };
  const servers: Listener[] = [];
  let httpsServer: https.Server | Http2SecureServer | undefined;
  let h2Guard: Http2Guard | undefined;
  let httpsAddress: AddressInfo | undefined;
  let httpAddress: AddressInfo | undefined;

  try {
    if (config.https !== undefined) {
      const tls = config.https;
      const onRequest = (req: GatewayRequest, res: GatewayResponse) => {
        res.setHeader('strict-transport-security', hsts);
        handler(req, res);
      };
      const tlsOptions = { ...tlsProfileOptions(tls.profile), ...readTls(tls.cert, tls.key) };
      if (tls.http2.enabled) {
        // ALPN picks h2 or http/1.1; Node's compatibility API gives both the same request and
        // response objects, so the steps and respond.ts serve either.
        const h2Server = http2.createSecureServer(
          { ...http2ServerOptions(tls.http2, config.limits), ...tlsOptions },
          onRequest,
        );
        http1FallbackLimits(h2Server, config.limits, serverOptions.keepAliveTimeout);
        h2Guard = guardSessions(h2Server, tls.http2, config.limits, log);
        httpsServer = h2Server;
      } else {
        httpsServer = https.createServer({ ...serverOptions, ...tlsOptions }, onRequest);
      }
      servers.push(httpsServer);
      httpsAddress = await listen(harden(httpsServer, config, log), tls.host, tls.port);
    }
    // Plain HTTP stays HTTP/1.1: no h2c (cleartext HTTP/2 by prior knowledge or Upgrade), which
    // browsers never use and which would only widen what port 80 parses.
    if (config.http.mode !== 'off') {
      const httpsPort = httpsAddress?.port ?? 443;
      const onRequest: Http1Handler = config.http.mode === 'serve' ? handler : redirectTo(httpsPort);
      const httpServer = http.createServer(serverOptions, onRequest);
      servers.push(httpServer);
      httpAddress = await listen(harden(httpServer, config, log), config.http.host, config.http.port);
    }
  } catch (err) {
    h2Guard?.closeSessions();
    await Promise.all(servers.map((s) => closeServer(s)));
    await Promise.all([queue.close(), replies.close()]);
    throw err;
  }
  log.info({ gatewayId: config.id, instanceId, http: httpAddress, https: httpsAddress }, 'gateway listening');

  return {
    instanceId,
    http: httpAddress,
    https: httpsAddress,
    reloadTls() {
      if (httpsServer === undefined || config.https === undefined) return;
      try {
        httpsServer.setSecureContext({
          ...tlsProfileOptions(config.https.profile),
          ...readTls(config.https.cert, config.https.key),
        });
        log.info({ cert: config.https.cert }, 'TLS certificate reloaded');
      } catch (err) {
        log.error({ err: (err as Error).message }, 'TLS reload failed; keeping the previous certificate');
      }
    },
    async close() {
      h2Guard?.closeSessions();
      await Promise.all(servers.map((s) => closeServer(s)));
      await replies.close();
      await queue.close();
    },
  };
}

/** Static mounts answer first; everything else goes to the request handler (and its queue). */
function readTls(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(certFile), key: readFileSync(keyFile) };
}

/** Header-count cap, and a definite answer (or a close) for requests Node cannot parse. */
type Listener = http.Server | https.Server | Http2SecureServer;
type Http1Handler = (req: IncomingMessage, res: ServerResponse) => void;

function isHttp1(server: Listener): server is http.Server | https.Server {
  return server instanceof http.Server || server instanceof https.Server;
}

function harden<S extends Listener>(server: S, config: GatewayConfig, log: Logger): S {
  // One more than allowed, so the handler can see that the limit was passed (HTTP/1.1; an
  // HTTP/2 server's fallback gets it from http1FallbackLimits).
  if (isHttp1(server)) server.maxHeadersCount = config.limits.maxHeaders + 1;
  server.maxConnections = config.limits.maxConnections;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status =
      err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    log.debug({ code: err.code, clientIp: socket.remoteAddress }, 'malformed request');
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
    );
  });
  return server;
}

const HOST =
  /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$|^\[[0-9a-f:.]+\]$/i;

/** Port 80 in redirect mode: a permanent redirect to the same path on HTTPS. */
function redirectTo(httpsPort: number): Http1Handler {
  return (req: IncomingMessage, res: ServerResponse) => {
    const hostHeader = req.headers.host ?? '';
    const host = hostHeader.startsWith('[')
      ? hostHeader.slice(0, hostHeader.indexOf(']') + 1)
      : hostHeader.split(':')[0]!;
    if (!HOST.test(host)) {
      res.writeHead(400, { 'content-length': 0, connection: 'close' }).end();
      return;
    }
    const port = httpsPort === 443 ? '' : `:${httpsPort}`;
    res.writeHead(308, { location: `https://${host}${port}${req.url ?? '/'}`, 'content-length': 0 }).end();
  };
}

function listen(server: Listener, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: Listener): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    if (isHttp1(server)) server.closeIdleConnections();
  });
}
