// The knock guard's guard.json, for a gateway's guard and for a broker's own (its admin SSH):
// `nonstop render guard` (Ansible) and the test world build it here. Decided once: a broker's
// guard lets no port in but its SSH to a knock; a gateway's lets in exactly its web ports; the
// table stays when the guard stops (the host stays closed, as nftables.service loaded it).
import { errors } from '../../lib/errors.js';
import { GUARD_METRICS_PORT } from '../schemas/guard.js';

/** The guard's journal of spent knocks (knock/guard-state.ts), in systemd's StateDirectory. */
export const GUARD_STATE_FILE = '/var/lib/nonstop-guard/state';
import type { RotationParams } from '../schemas/knock-common.js';
import { checkedDocument, optional } from './document.js';

export interface KnockClient {
  readonly name: string;
  readonly secret: string;
  /** While the client switches to `secret` (README, "Rotating credentials"): it opens too. */
  readonly previousSecret?: string;
}

/** A single-packet-authorization client: its keys as `nonstop spa-keygen` prints them. */
export interface SpaClient {
  readonly name: string;
  /** KEY_BASE64 */
  readonly key: string;
  /** HMAC_KEY_BASE64 */
  readonly hmacKey: string;
}

export interface StaticKnock {
  readonly name: string;
  readonly sequence: readonly string[];
}

export interface GuardInput {
  /** The host the guard closes: a gateway, or a broker (whose admins knock it). */
  readonly role: 'gateway' | 'broker';
  /** That host's id: part of every rotating sequence, so a secret opens this host only. */
  readonly id: string;
  readonly sshPort?: number;
  /** Gateway only: the ports its web server answers on (default 80 and 443). */
  readonly httpPort?: number;
  readonly httpsPort?: number;
  readonly windowSeconds?: number;
  readonly rotation?: Partial<RotationParams>;
  /** Rotating clients (a broker each on a gateway; admins), with their secret for this host. */
  readonly clients?: readonly KnockClient[];
  /** knockd-style static sequences (admins). */
  readonly static?: readonly StaticKnock[];
  /** SPA clients (brokers with `knock: "spa"`; admins with `nonstop knock --spa` or fwknop). */
  readonly spaClients?: readonly SpaClient[];
  /** The SPA port (UDP; default 62201, fwknop's). */
  readonly spaPort?: number;
  /** The metrics listener's port on loopback (default 9466); null: none. */
  readonly metricsPort?: number | null;
  /** Where the guard keeps what it spent across restarts (default GUARD_STATE_FILE). */
  readonly stateFile?: string;
}

export function guardDocument(input: GuardInput) {
  const label = `guard.json of ${input.id}`;
  const fail = (field: string, expected: string) =>
    errors.CONFIG_INVALID(`${label}: field "${field}" ${expected}`);
  const clients = input.clients ?? [];
  const statics = input.static ?? [];
  const spaClients = input.spaClients ?? [];
  if (input.role === 'broker') {
    for (const field of ['httpPort', 'httpsPort'] as const)
      if (input[field] !== undefined)
        throw fail(field, 'is for role "gateway" only (a broker serves no port)');
    // Nothing else opens a broker's SSH: without a knock, no admin could ever log in again.
    if (clients.length + statics.length + spaClients.length === 0)
      throw fail(
        'clients',
        '(or "static", "spaClients") must name an admin knock for role "broker" (its SSH would open to no one)',
      );
  }
  const metricsPort = input.metricsPort === undefined ? GUARD_METRICS_PORT : input.metricsPort;
  const publicTcpPorts = input.role === 'gateway' ? [input.httpPort ?? 80, input.httpsPort ?? 443] : [];
  return checkedDocument('guard', label, {
    kind: 'guard',
    gateway: input.id,
    sshPort: input.sshPort ?? 22,
    publicTcpPorts,
    ...optional('windowSeconds', input.windowSeconds),
    // Stopped or crashed, the guard leaves its table: the host stays closed until it is back.
    removeTableOnExit: false,
    // A restart must not make a recorded SPA packet or rotating knock a first use again.
    stateFile: input.stateFile ?? GUARD_STATE_FILE,
    static: statics,
    rotating: { ...input.rotation, clients },
    ...(spaClients.length === 0
      ? {}
      : { spa: { ...optional('port', input.spaPort), clients: spaClients.map((c) => ({ ...c })) } }),
    // On loopback, always: the host's scraper or an admin's login reads it.
    ...(metricsPort === null ? {} : { metrics: { host: '127.0.0.1', port: metricsPort } }),
  } as const);
}

export type GuardDocument = ReturnType<typeof guardDocument>;
