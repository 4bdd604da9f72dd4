// What the daemons' own HTTP listeners share (a broker's status, a gateway's metrics): they are
// for the host's admin and its scraper only, so a request naming any host but a loopback one (or
// the listener's own admin address) is refused, and a web page the admin has open cannot read them
// by rebinding its name to 127.0.0.1; and they listen, and close with their daemon, the same way.
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './log.js';

/** The Host a loopback client sends: a loopback address or localhost, with any port. */
const LOOPBACK_HOST = /^(?:127(?:\.\d{1,3}){3}|\[::1\]|localhost)(?::\d{1,5})?$/i;

/** True when the Host header names loopback, or `ownHost` (an admin-network address) if given. */
export function adminHostAllowed(header: string | undefined, ownHost?: string): boolean {
  if (header === undefined) return false;
  if (LOOPBACK_HOST.test(header)) return true;
  if (ownHost === undefined) return false;
  const own = (ownHost.includes(':') ? `[${ownHost}]` : ownHost).toLowerCase();
  const name = header.toLowerCase();
  return name === own || (name.startsWith(`${own}:`) && /^\d{1,5}$/.test(name.slice(own.length + 1)));
}

/** Answers 421 (and true) to a request whose Host is not allowed. */
export function refuseForeignHost(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  ownHost?: string,
): boolean {
  if (adminHostAllowed(req.headers.host, ownHost)) return false;
  res.writeHead(421, { 'content-length': 0, connection: 'close' }).end();
  return true;
}

export interface AdminListener {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/** Listens; `close` stops it and drops its connections at once (a scraper reconnects). */
export function listenAdmin(
  server: http.Server,
  where: { readonly host: string; readonly port: number },
  log: Logger,
  what: string,
): Promise<AdminListener> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.port, where.host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      log.info({ address }, `${what} listening`);
      resolve({
        address,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
