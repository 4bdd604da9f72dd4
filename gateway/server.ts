// Starts a gateway: HTTPS (and HTTP, redirecting or serving) listeners in front of the
// request handler, the queue connection and this process's reply stream; and, when configured,
// the metrics listener on loopback.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type Http2SecureServer } from 'node:http2';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { redisEndpoints, type GatewayConfig } from '../config/schemas/gateway.js';
import { checkClientAddress } from '../config/client-address.js';
import { checkStaticMounts } from '../config/static-mounts.js';
import type { RoutesConfig } from '../config/schemas/routes.js';
import { replyKey } from '../lib/envelope.js';
import { errors } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { createRedis } from '../lib/redis.js';
import { ClientAddresses } from './client-address.js';
import type { ChallengeStore } from './acme/challenges.js';
import { RelayedChallengeStore } from './acme/relayed-challenges.js';
import { AcmeManager, type ServedCertificate } from './acme/manager.js';
import { TlsAlpnResponder } from './acme/tls-alpn.js';
import { createRequestHandler } from './handler.js';
import { answerChallenge } from './steps/acme-challenge.js';
import type { GatewayRequest, GatewayResponse } from './http-message.js';
import { guardSessions, http1FallbackLimits, http2ServerOptions, type Http2Guard } from './http2-guard.js';
import { IdempotencyScope } from './idempotency-key.js';
import { FIXED_ROUTES, GatewayMetrics } from './metrics.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';
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
  /** The metrics listener (`metrics`), if configured. */
  readonly metricsAddress: AddressInfo | undefined;
  /** Its metrics; `metrics.setCertificate` is for any path that installs a certificate itself. */
  readonly metrics: GatewayMetrics;
  /** With `https.acme`: the certificate's manager (what it serves, renewNow). */
  readonly acme: AcmeManager | undefined;
  /** Re-reads the certificate and key (SIGHUP); keeps the old ones if the new ones fail. */
  reloadTls(): void;
  close(): Promise<void>;
}

export interface GatewayOptions {
  /**
   * With `https.acme`: where challenge answers go. Default: published through the brokers to
   * every gateway serving the name (gateway/acme/relayed-challenges.ts), and answered here.
   */
  readonly challenges?: ChallengeStore;
  /** With `https.acme`: told of each certificate the HTTPS listener starts to serve. */
  readonly onCertificate?: (cert: ServedCertificate) => void;
}

export async function startGateway(
  config: GatewayConfig,
  routes: RoutesConfig,
  log: Logger,
  options: GatewayOptions = {},
): Promise<Gateway> {
  if (config.http.mode === 'redirect' && config.https === undefined) {
    throw errors.CONFIG_INVALID(
      'gateway: field "http.mode" is "redirect" but no "https" listener is configured',
    );
  }
  const acmeConfig = config.https?.acme;
  if (acmeConfig?.challenges.includes('http-01') === true && config.http.mode === 'off') {
    throw errors.CONFIG_INVALID(
      'gateway: field "https.acme.challenges" has "http-01" but "http.mode" is "off" (port 80 answers it)',
    );
  }
  let acmeManager: AcmeManager | undefined;
  // Config problems first, before any connection is made.
  const hsts = config.https === undefined ? '' : hstsHeader(config.https.hsts);
  checkStaticMounts('gateway', config.static, routes);
  checkClientAddress('gateway', config);
  const clients = new ClientAddresses(config.clientAddress, log);
  const statics = new StaticFiles(config.static, log, config.compression);
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
  const relayed =
    acmeConfig === undefined || options.challenges !== undefined
      ? undefined
      : RelayedChallengeStore.connect(config.redis, config.id, instanceId, log);
  const challenges = acmeConfig === undefined ? undefined : (options.challenges ?? relayed);
  const httpChallenges = acmeConfig?.challenges.includes('http-01') === true ? challenges : undefined;
  const alpn =
    challenges !== undefined && acmeConfig?.challenges.includes('tls-alpn-01') === true
      ? new TlsAlpnResponder(
          challenges,
          log,
          config.https?.http2.enabled === true ? ['h2', 'http/1.1'] : ['http/1.1'],
        )
      : undefined;
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
  const metrics = new GatewayMetrics(
    routes.routes.map((r) => r.name),
    { pending: () => replies.pending },
    // The process's own (CPU, memory, event loop) only where someone can read them.
    { processMetrics: config.metrics !== undefined },
  );
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
    metrics,
    clientAddresses: clients,
    challenges: httpChallenges,
    certificate:
      acmeConfig === undefined
        ? undefined
        : { readiness: () => acmeManager?.readiness() ?? { ok: false, reason: 'ACME not started' } },
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
  let metricsServer: MetricsServer | undefined;

  try {
    if (config.https !== undefined) {
      const tls = config.https;
      const onRequest = (req: GatewayRequest, res: GatewayResponse) => {
        res.setHeader('strict-transport-security', hsts);
        handler(req, res);
      };
      // With ACME alone there is no certificate until the first one is in (handshakes fail).
      const files: { cert?: Buffer; key?: Buffer } =
        tls.cert === undefined || tls.key === undefined ? {} : readTls(tls.cert, tls.key);
      const tlsOptions = {
        ...tlsProfileOptions(tls.profile),
        ...(tls.acme === undefined ? files : {}),
        // TLS-ALPN-01 picks the protocol itself (acme-tls/1, else h2 or http/1.1 as below).
        ...(alpn === undefined ? {} : { SNICallback: alpn.SNICallback, ALPNCallback: alpn.ALPNCallback }),
      };
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
      // With ACME, the certificate's expiry is set as each one is served (onCertificate below).
      if (tls.acme === undefined && files.cert !== undefined) metrics.setCertificate(files.cert);
      if (alpn !== undefined)
        httpsServer.on('secureConnection', (socket: TLSSocket) => alpn.onSecureConnection(socket));
      servers.push(httpsServer);
      const listener = clients.acceptOn(
        harden(httpsServer, config, clients, log),
        'https',
        tls.proxyProtocol,
      );
      httpsAddress = await listen(listener, tls.host, tls.port);
    }
    // Plain HTTP stays HTTP/1.1: no h2c (cleartext HTTP/2 by prior knowledge or Upgrade), which
    // browsers never use and which would only widen what port 80 parses.
    if (config.http.mode !== 'off') {
      const httpsPort = httpsAddress?.port ?? 443;
      const onRequest: Http1Handler =
        config.http.mode === 'serve' ? handler : counted(metrics, redirectTo(httpsPort, httpChallenges));
      const httpServer = http.createServer(serverOptions, onRequest);
      servers.push(httpServer);
      const listener = clients.acceptOn(
        harden(httpServer, config, clients, log),
        'http',
        config.http.proxyProtocol,
      );
      httpAddress = await listen(listener, config.http.host, config.http.port);
    }
    if (config.metrics !== undefined) metricsServer = await startMetricsServer(config.metrics, metrics, log);
  } catch (err) {
    h2Guard?.closeSessions();
    await Promise.all(servers.map((s) => closeServer(s)));
    await Promise.all([queue.close(), replies.close()]);
    relayed?.close();
    throw err;
  }
  log.info({ gatewayId: config.id, instanceId, http: httpAddress, https: httpsAddress }, 'gateway listening');
  if (acmeConfig !== undefined && httpsServer !== undefined && challenges !== undefined) {
    const server = httpsServer;
    const profile = tlsProfileOptions(config.https!.profile);
    const { cert, key } = config.https!;
    acmeManager = new AcmeManager({
      config: acmeConfig,
      store: challenges,
      log,
      ...(cert === undefined || key === undefined
        ? {}
        : { fallback: { certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') } }),
      onCertificate(served) {
        // New handshakes get the new certificate; open connections keep theirs.
        server.setSecureContext({ ...profile, cert: served.certPem, key: served.keyPem });
        metrics.setCertificate(served.certPem);
        options.onCertificate?.(served);
      },
    });
    relayed?.start();
    acmeManager.start();
  }

  return {
    instanceId,
    http: httpAddress,
    https: httpsAddress,
    metricsAddress: metricsServer?.address,
    metrics,
    acme: acmeManager,
    reloadTls() {
      if (httpsServer === undefined || config.https === undefined) return;
      if (acmeManager !== undefined || config.https.cert === undefined || config.https.key === undefined) {
        log.info({}, 'TLS reload skipped: the certificate is managed by ACME');
        return;
      }
      try {
        const files = readTls(config.https.cert, config.https.key);
        httpsServer.setSecureContext({ ...tlsProfileOptions(config.https.profile), ...files });
        metrics.setCertificate(files.cert);
        log.info({ cert: config.https.cert }, 'TLS certificate reloaded');
      } catch (err) {
        log.error({ err: (err as Error).message }, 'TLS reload failed; keeping the previous certificate');
      }
    },
    async close() {
      await acmeManager?.stop();
      relayed?.close();
      h2Guard?.closeSessions();
      await Promise.all([...servers.map((s) => closeServer(s)), metricsServer?.close()]);
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

function harden<S extends Listener>(
  server: S,
  config: GatewayConfig,
  clients: ClientAddresses,
  log: Logger,
): S {
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
    log.debug({ code: err.code, clientIp: clients.peerOf(socket) }, 'malformed request');
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
    );
  });
  return server;
}

const HOST =
  /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$|^\[[0-9a-f:.]+\]$/i;

/** `handler` with each request counted under FIXED_ROUTES.redirect. */
function counted(metrics: GatewayMetrics, handler: Http1Handler): Http1Handler {
  const series = metrics.seriesOf(FIXED_ROUTES.redirect);
  return (req, res) => {
    metrics.track(res, series);
    handler(req, res);
  };
}

/** Port 80 in redirect mode: a permanent redirect to the same path on HTTPS (but ACME's http-01). */
function redirectTo(httpsPort: number, challenges: ChallengeStore | undefined): Http1Handler {
  const redirect = redirectOnly(httpsPort);
  if (challenges === undefined) return redirect;
  return (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    answerChallenge(challenges, req, res, q === -1 ? url : url.slice(0, q)).then(
      (answered) => {
        if (!answered) redirect(req, res);
      },
      () => res.writeHead(500, { 'content-length': 0, connection: 'close' }).end(),
    );
  };
}

function redirectOnly(httpsPort: number): Http1Handler {
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
