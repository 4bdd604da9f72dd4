// The address a request is counted and reported under (the envelope's clientIp, the rate limit,
// logs). The peer is the connection's source, or the client a PROXY header named; when the peer
// is a trusted proxy, its forwarding header (X-Forwarded-For or Forwarded, as configured) is read
// from the right, past every trusted proxy, to the first address that is not one.
import { isIPv6, type Server, type Socket } from 'node:net';
import type { GatewayConfig } from '../config/schemas/gateway.js';
import { AddressSet, canonicalIp } from '../lib/ip-prefix.js';
import type { Logger } from '../lib/log.js';
import { ProxiedConnections, requireProxyHeader } from './proxy-listener.js';
import type { GatewayRequest } from './http-message.js';

/** Hops read from the right at most: longer chains than this are not a real path. */
export const MAX_HOPS = 32;
/** A Forwarded value is parsed whole (its quoting decides where elements end), up to this length. */
export const MAX_FORWARDED_CHARS = 8192;

/** A hop as a header names it: its address, or undefined when it names none or is malformed. */
type Hop = string | undefined;

export type Resolution = { readonly address: string } | { readonly ignored: string };

export class ClientAddresses {
  readonly trusted: AddressSet;

  constructor(
    private readonly config: GatewayConfig['clientAddress'],
    private readonly log: Logger,
    readonly connections = new ProxiedConnections(),
  ) {
    this.trusted = new AddressSet(config.trustedProxies);
  }

  /** Puts `server` in PROXY mode when `enabled` (`http.proxyProtocol`, `https.proxyProtocol`). */
  acceptOn<S extends Server>(server: S, listener: string, enabled: boolean): S {
    if (!enabled) return server;
    requireProxyHeader(server, {
      listener,
      trusted: this.trusted,
      headerTimeoutMs: this.config.proxyHeaderTimeoutMs,
      connections: this.connections,
      log: this.log,
    });
    return server;
  }

  /**
   * The connection's client, before any request is read: the address its PROXY header named,
   * else its source (for logs about the connection itself, such as a malformed request).
   */
  peerOf(socket: Pick<Socket, 'localAddress' | 'localPort' | 'remoteAddress' | 'remotePort'>): string {
    return this.connections.get(socket) ?? canonicalIp(socket.remoteAddress ?? '') ?? 'unknown';
  }

  of(req: GatewayRequest): string {
    const peer = this.peerOf(req.socket);
    const name = this.config.forwardedHeader;
    if (name === 'none' || !this.trusted.has(peer)) return peer;
    const header = req.headers[name];
    if (header === undefined) return peer;
    // Node joins repeated lines of these headers with ", ", as a list of hops reads.
    const value = typeof header === 'string' ? header : header.join(', ');
    const hops = name === 'forwarded' ? forwardedHops(value) : xForwardedForHops(value);
    const found = clientFrom(peer, hops, this.trusted);
    if ('address' in found) return found.address;
    this.log.debug({ peer, header: name, reason: found.ignored }, 'forwarding header ignored');
    return peer;
  }
}

/**
 * Walks `hopsFromRight` (nearest first) past trusted proxies to the first address that is not
 * one. A hop that names no address before that point makes the whole header worthless.
 */
export function clientFrom(
  peer: string,
  hopsFromRight: Iterable<Hop> | string,
  trusted: AddressSet,
): Resolution {
  if (typeof hopsFromRight === 'string') return { ignored: hopsFromRight };
  let nearest = peer;
  let count = 0;
  for (const hop of hopsFromRight) {
    if (++count > MAX_HOPS) return { ignored: `more than ${MAX_HOPS} trusted hops` };
    if (hop === undefined) return { ignored: 'a hop names no address' };
    if (!trusted.has(hop)) return { address: hop };
    nearest = hop;
  }
  // Every hop was a trusted proxy: the request started at the farthest of them.
  return { address: nearest };
}

/** X-Forwarded-For's entries from the right; each an address, `[v6]`, or either with a port. */
export function* xForwardedForHops(value: string): Generator<Hop> {
  let end = value.length;
  for (;;) {
    const start = end === 0 ? -1 : value.lastIndexOf(',', end - 1);
    yield hopAddress(value.slice(start + 1, end).trim());
    if (start === -1) return;
    end = start;
  }
}

function hopAddress(text: string): Hop {
  if (text.length === 0 || text.length > 64) return undefined;
  let address = text;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return undefined;
    const rest = text.slice(close + 1);
    if (rest !== '' && !/^:[0-9]{1,5}$/.test(rest)) return undefined;
    address = text.slice(1, close);
    return isIPv6(address) && !address.includes('%') ? canonicalIp(address) : undefined;
  }
  // IPv4 with a port; a bare IPv6 address has several colons and no port.
  const colon = text.indexOf(':');
  if (colon !== -1 && colon === text.lastIndexOf(':')) {
    if (!/^[0-9]{1,5}$/.test(text.slice(colon + 1))) return undefined;
    address = text.slice(0, colon);
  }
  if (address.includes('%')) return undefined;
  return canonicalIp(address);
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * RFC 7239 Forwarded: the `for` of each element, from the right. A value that does not parse as
 * a whole (unbalanced quotes, a pair without `=`) is a string saying why: it is ignored.
 */
export function forwardedHops(value: string): Hop[] | string {
  if (value.length > MAX_FORWARDED_CHARS) return `longer than ${MAX_FORWARDED_CHARS} characters`;
  const elements: Hop[] = [];
  let pairs: [string, string][] = [];
  let i = 0;
  const flush = (): string | undefined => {
    const fors = pairs.filter(([k]) => k === 'for');
    if (pairs.length === 0) return 'an empty element';
    if (fors.length > 1) return 'an element with two "for"';
    elements.push(fors.length === 0 ? undefined : forNode(fors[0]![1]));
    pairs = [];
    return undefined;
  };
  while (i <= value.length) {
    while (value[i] === ' ' || value[i] === '\t') i++;
    const eq = value.indexOf('=', i);
    if (eq === -1) return 'a pair without "="';
    const key = value.slice(i, eq).toLowerCase();
    if (!TOKEN.test(key)) return 'a parameter name that is not a token';
    i = eq + 1;
    let v: string;
    if (value[i] === '"') {
      v = '';
      i++;
      for (;;) {
        const c = value[i];
        if (c === undefined) return 'an unterminated quoted string';
        if (c === '"') break;
        if (c === '\\') {
          if (value[i + 1] === undefined) return 'an unterminated quoted string';
          v += value[i + 1];
          i += 2;
        } else {
          v += c;
          i++;
        }
      }
      i++;
    } else {
      const m = /^[^;,\s]*/.exec(value.slice(i))![0];
      if (!TOKEN.test(m)) return 'a value that is neither a token nor quoted';
      v = m;
      i += m.length;
    }
    pairs.push([key, v]);
    while (value[i] === ' ' || value[i] === '\t') i++;
    const sep = value[i];
    if (sep === ';') i++;
    else if (sep === ',' || sep === undefined) {
      const problem = flush();
      if (problem !== undefined) return problem;
      if (sep === undefined) break;
      i++;
    } else return 'a stray character after a value';
  }
  return elements.reverse();
}

/** RFC 7239 section 6: IPv4, "[IPv6]", "unknown" or an obfuscated name, each with an optional port. */
function forNode(node: string): Hop {
  if (node.startsWith('[')) {
    const close = node.indexOf(']');
    if (close === -1) return undefined;
    const port = node.slice(close + 1);
    if (port !== '' && !/^:(?:[0-9]{1,5}|_[A-Za-z0-9._-]+)$/.test(port)) return undefined;
    const v6 = node.slice(1, close);
    return isIPv6(v6) && !v6.includes('%') ? canonicalIp(v6) : undefined;
  }
  const colon = node.indexOf(':');
  const host = colon === -1 ? node : node.slice(0, colon);
  if (colon !== -1 && !/^(?:[0-9]{1,5}|_[A-Za-z0-9._-]+)$/.test(node.slice(colon + 1))) return undefined;
  // "unknown" and obfuscated names ("_hidden") are hops without an address.
  return /^[0-9.]+$/.test(host) ? canonicalIp(host) : undefined;
}
