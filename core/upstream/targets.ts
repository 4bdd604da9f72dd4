// The upstreams a core config names, checked at start: where each one is, which routes it
// serves, and the HTTP agent that reaches it. Plain http:// only to an address that cannot
// leave the host or the private network; anything else is https:// with a CA to pin.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { UpstreamConfig } from '../../config/schemas/core.js';
import { errors } from '../../lib/errors.js';

export interface UpstreamTarget {
  /** `upstreams[i]`, for messages. */
  readonly label: string;
  readonly url: URL;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  /** No keep-alive: a reused socket the application closed would fail a call that cannot be retried. */
  readonly agent: http.Agent;
  matches(route: string): boolean;
}

/** `baseDir`: what a relative `ca` is resolved against (the config file's folder). */
export function checkUpstreams(
  configs: readonly UpstreamConfig[],
  baseDir = process.cwd(),
): UpstreamTarget[] {
  return configs.map((config, i) => checkUpstream(config, `upstreams[${i}]`, baseDir));
}

/** The first upstream that serves `route`, if any. */
export function upstreamFor(targets: readonly UpstreamTarget[], route: string): UpstreamTarget | undefined {
  return targets.find((t) => t.matches(route));
}

function checkUpstream(config: UpstreamConfig, label: string, baseDir: string): UpstreamTarget {
  const fail = (what: string) => errors.CONFIG_INVALID(`core config: field "${label}.${what}`);
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw fail(`url" must be an absolute http:// or https:// URL (got ${JSON.stringify(config.url)})`);
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw fail('url" must not carry credentials, a query or a fragment');
  }
  let agent: http.Agent;
  if (url.protocol === 'http:') {
    if (!isLocalHost(url.hostname)) {
      throw fail(
        `url" is plain http:// to ${url.hostname}: use a loopback or private IP address, or https:// with "ca"`,
      );
    }
    agent = new http.Agent({ keepAlive: false });
  } else if (url.protocol === 'https:') {
    if (config.ca === undefined)
      throw fail('ca" is required for an https:// upstream (its CA certificate file)');
    const file = resolve(baseDir, config.ca);
    let ca: Buffer;
    try {
      ca = readFileSync(file);
    } catch (err) {
      throw fail(`ca" cannot be read: ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    agent = new https.Agent({ keepAlive: false, ca });
  } else {
    throw fail(`url" must be http:// or https:// (got ${url.protocol})`);
  }
  const patterns = config.routes.map(globToRegExp);
  return {
    label,
    url,
    timeoutMs: config.timeoutMs,
    maxResponseBytes: config.maxResponseBytes,
    agent,
    matches: (route) => patterns.some((p) => p.test(route)),
  };
}

/** `site.*` → /^site\..*$/: `*` is any run of characters, everything else is literal. */
export function globToRegExp(glob: string): RegExp {
  const parts = glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\-]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`);
}

/** Loopback or a private address (RFC 1918, ULA, link-local), or the name localhost. */
export function isLocalHost(hostname: string): boolean {
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  if (host === 'localhost') return true;
  const kind = isIP(host);
  if (kind === 4) {
    const [a = 0, b = 0] = host.split('.').map(Number);
    return a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
  }
  if (kind === 6) {
    const h = host.toLowerCase();
    if (h === '::1') return true;
    const first = Number.parseInt(h.split(':')[0] || '0', 16);
    return (first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80;
  }
  return false;
}
