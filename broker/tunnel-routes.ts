// Host routes with `quickack 1` from a broker to each of its gateways. Several channels share a
// tunnel's one TCP connection, and the gateway's sshd leaves Nagle's algorithm on for it (a
// session without a terminal): after the gateway's blocking reply read, which the broker's Redis
// does not answer at once, the broker's kernel delays its ACK (up to 40 ms) and the next queue
// add waits in sshd for that ACK. With quickack on the route the broker ACKs at once (bench/
// README.md: light-load p99 50–72 ms → 14–17 ms in the world). The broker cannot set
// TCP_QUICKACK on its sockets itself (Node has no setsockopt), so the route carries it.
// `nonstop tunnel-routes` (a oneshot unit before the broker, Ansible) and the test world apply
// them with this code.
import { execFile } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import type { BrokerConfig } from '../config/schemas/broker.js';

const run = promisify(execFile);

/** What `ip -j route get ADDR` says of the way to ADDR. */
export interface RouteToAddress {
  readonly dst: string;
  readonly gateway?: string;
  readonly dev: string;
}

/** The gateways' SSH hosts, as the broker config names them (addresses or names). */
export function tunnelHosts(config: Pick<BrokerConfig, 'gateways'>): string[] {
  const hosts = config.gateways.flatMap((g) => (g.ssh === undefined ? [] : [g.ssh.host]));
  return [...new Set(hosts)];
}

/** `ip` arguments that make the way to `address` a host route with quickack, as it goes now. */
export function quickackRouteArgs(address: string, via: RouteToAddress): string[] {
  const v6 = isIP(address) === 6;
  return [
    ...(v6 ? ['-6'] : []),
    'route',
    'replace',
    `${address}/${v6 ? 128 : 32}`,
    ...(via.gateway === undefined ? [] : ['via', via.gateway]),
    'dev',
    via.dev,
    'quickack',
    '1',
  ];
}

/** Parses `ip -j route get` output; throws with `address` named when it says nothing usable. */
export function parseRouteGet(address: string, stdout: string): RouteToAddress {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new Error(`ip route get ${address}: not JSON: ${stdout.slice(0, 200)}`);
  }
  const first = Array.isArray(parsed) ? (parsed[0] as Record<string, unknown> | undefined) : undefined;
  if (first === undefined || typeof first.dev !== 'string')
    throw new Error(`ip route get ${address}: no route with a device: ${stdout.slice(0, 200)}`);
  if (first.dev === 'lo') throw new Error(`ip route get ${address}: it is this host (dev lo)`);
  return {
    dst: typeof first.dst === 'string' ? first.dst : address,
    dev: first.dev,
    ...(typeof first.gateway === 'string' ? { gateway: first.gateway } : {}),
  };
}

export interface TunnelRoutesOptions {
  /** The `ip` binary (and a prefix such as `ip netns exec NS` for the world). */
  readonly ip?: readonly string[];
  readonly dryRun?: boolean;
}

/**
 * For every address of every gateway host: the route it takes now, made a host route with
 * quickack (`ip route replace`, so running it again changes nothing). Returns the commands.
 */
export async function applyTunnelRoutes(
  config: Pick<BrokerConfig, 'gateways'>,
  options: TunnelRoutesOptions = {},
): Promise<string[][]> {
  const [ip, ...prefix] = options.ip ?? ['ip'];
  const done: string[][] = [];
  for (const host of tunnelHosts(config)) {
    const addresses = isIP(host) !== 0 ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
    for (const address of [...new Set(addresses)]) {
      const got = await run(ip!, [...prefix, '-j', 'route', 'get', address]);
      const args = quickackRouteArgs(address, parseRouteGet(address, got.stdout));
      if (options.dryRun !== true) await run(ip!, [...prefix, ...args]);
      done.push(args);
    }
  }
  return done;
}
