// What the guard does with one SPA datagram (knock/spa.ts reads fwknop's format): decode it with
// the clients' keys, then the checks fwknopd makes, in the order that costs an attacker most and
// the guard least. Garbage, a wrong key or a tampered byte fails the HMAC before anything is
// decrypted. An authentic packet must then be fresh (its timestamp within maxAgeSeconds behind
// and clockSkewSeconds ahead of this host's clock), never seen before (the replay cache, from any
// source), ask for this host's SSH port and nothing else, and name an address its client may
// open. Pure: time comes in as an argument, the decision goes out, so tests drive it as the guard does.
import { isIP } from 'node:net';
import type { GuardSpaConfig } from '../config/schemas/guard.js';
import { canonicalIp } from '../lib/ip-prefix.js';
import { decodeSpa, type SpaDecodeResult, type SpaKey, type SpaMessage } from './spa.js';
import { SpaReplayCache, spaReplayLifetimeMs } from './spa-replay.js';
import type { GuardStateRecord } from './guard-state.js';

type DecodeFailure = Extract<SpaDecodeResult, { ok: false }>['reason'];

/**
 * Why an authentic packet (its HMAC matched a client's key) opened nothing: the decoder's reasons
 * past the HMAC (a key pair that does not match, a message nonstop does not act on), or the gate's.
 */
export type SpaGateRefusal =
  | Exclude<DecodeFailure, 'size' | 'encoding' | 'hmac' | 'age'>
  | 'stale'
  | 'future'
  | 'replay'
  | 'replay-cache-full'
  | 'access'
  | 'address';

export type SpaOutcome =
  | {
      readonly kind: 'opened';
      readonly client: string;
      /** The address whose SSH window opens. */
      readonly address: string;
      readonly windowSeconds: number;
      readonly message: SpaMessage;
    }
  /** Not authentic: garbage, a wrong key, a tampered byte. Nothing is known about its sender. */
  | {
      readonly kind: 'unauthenticated';
      readonly reason: DecodeFailure;
      readonly detail: string;
    }
  | {
      readonly kind: 'refused';
      readonly reason: SpaGateRefusal;
      readonly client: string;
      readonly detail: string;
      /** For a clock problem: the packet's timestamp minus this host's clock, in seconds. */
      readonly skewSeconds?: number;
    };

const ANY_ADDRESS = new Set(['0.0.0.0', '::']);

/**
 * Packets refused for a timestamp too far ahead, remembered until they would be too old: else a
 * recorded copy, sent again once its time has come into the window, would be a first use. Only
 * authentic packets get here (a key holder whose clock runs fast), so few; past this many the
 * one that expires soonest is forgotten.
 */
const MAX_EARLY_DIGESTS = 4096;

export class SpaGate {
  readonly #keys: readonly SpaKey[];
  readonly #openFor: ReadonlyMap<string, 'source' | 'packet'>;
  readonly #replay: SpaReplayCache;
  /** Digests of packets refused as from the future → when they become too old to accept. */
  readonly #early = new Map<string, number>();
  /** After a lost state file: packets stamped at or before this (epoch s) are refused. */
  #stampedThroughS = -Infinity;

  constructor(
    private readonly config: GuardSpaConfig,
    private readonly sshPort: number,
    private readonly windowSeconds: number,
    /** Told of every digest remembered, to keep it across a restart (knock/guard-state.ts). */
    private readonly journal: (record: GuardStateRecord) => void = () => {},
  ) {
    this.#keys = config.clients.map((c) => ({
      name: c.name,
      encryptionKey: Buffer.from(c.key, 'base64'),
      hmacKey: Buffer.from(c.hmacKey, 'base64'),
    }));
    this.#openFor = new Map(config.clients.map((c) => [c.name, c.openFor]));
    // A packet stays acceptable from clockSkewSeconds ahead of the clock until maxAgeSeconds
    // behind it, so that long is as long as its digest must be remembered.
    this.#replay = new SpaReplayCache({
      lifetimeMs: spaReplayLifetimeMs(config.maxAgeSeconds, config.clockSkewSeconds),
      maxEntries: config.replayCacheSize,
    });
  }

  /** Digests held against replay now. */
  get remembered(): number {
    return this.#replay.size + this.#early.size;
  }

  check(source: string, payload: Buffer, nowMs: number): SpaOutcome {
    // The age is checked below, where the refusal can say by how much and which way.
    const decoded = decodeSpa(payload, this.#keys, { nowMs, maxAgeSeconds: Infinity, skewSeconds: Infinity });
    if (!decoded.ok) {
      const { reason, client, detail } = decoded;
      if (
        client === undefined ||
        reason === 'size' ||
        reason === 'encoding' ||
        reason === 'hmac' ||
        reason === 'age'
      )
        return { kind: 'unauthenticated', reason, detail };
      return { kind: 'refused', reason, client, detail };
    }
    const { client, message } = decoded;
    const refuse = (reason: SpaGateRefusal, detail: string, skewSeconds?: number): SpaOutcome => ({
      kind: 'refused',
      reason,
      client,
      detail,
      ...(skewSeconds === undefined ? {} : { skewSeconds }),
    });

    const skewSeconds = message.timestamp - Math.floor(nowMs / 1000);
    if (-skewSeconds > this.config.maxAgeSeconds)
      return refuse(
        'stale',
        `timestamp ${-skewSeconds} s old (at most ${this.config.maxAgeSeconds})`,
        skewSeconds,
      );
    if (message.timestamp <= this.#stampedThroughS)
      return refuse(
        'replay',
        'stamped before this guard lost its record of used packets (its state file was unreadable); send a new one',
      );
    if (this.#early.has(decoded.replayDigest))
      return refuse(
        'replay',
        'this packet was refused before (its timestamp was ahead) and is not used later',
      );
    if (skewSeconds > this.config.clockSkewSeconds) {
      this.#rememberEarly(decoded.replayDigest, (message.timestamp + this.config.maxAgeSeconds) * 1000);
      return refuse(
        'future',
        `timestamp ${skewSeconds} s ahead of this clock (at most ${this.config.clockSkewSeconds})`,
        skewSeconds,
      );
    }
    // Remembered before the other checks: an authentic packet is used once, whatever it asked.
    const seen = this.#replay.admit(decoded.replayDigest, nowMs);
    if (seen === 'fresh')
      this.journal({ kind: 'spa', key: decoded.replayDigest, untilMs: nowMs + this.#replay.lifetimeMs });
    if (seen === 'replay') return refuse('replay', 'this packet was accepted before');
    if (seen === 'full')
      return refuse(
        'replay-cache-full',
        `${this.config.replayCacheSize} packets remembered; refusing new ones`,
      );

    const wrong = message.access.find((a) => a.protocol !== 'tcp' || a.port !== this.sshPort);
    if (wrong !== undefined || message.access.length === 0)
      return refuse(
        'access',
        `asks for ${message.access.map((a) => `${a.protocol}/${a.port}`).join(',') || 'nothing'}; ` +
          `this guard opens tcp/${this.sshPort} only`,
      );

    const carried = message.accessAddress;
    let address: string;
    if (this.#openFor.get(client) === 'packet') {
      if (isIP(carried) === 0 || ANY_ADDRESS.has(carried))
        return refuse('address', `carries ${carried}; client ${client} must name the address to open`);
      address = canonicalIp(carried)!;
    } else {
      if (!ANY_ADDRESS.has(carried) && canonicalIp(carried) !== canonicalIp(source))
        return refuse('address', `carries ${carried} but came from ${source}`);
      address = canonicalIp(source) ?? source;
    }
    const asked = message.clientTimeoutSeconds;
    const windowSeconds =
      asked !== undefined && asked > 0 ? Math.min(asked, this.windowSeconds) : this.windowSeconds;
    return { kind: 'opened', client, address, windowSeconds, message };
  }

  /** The digests to keep across a restart. */
  records(nowMs: number): GuardStateRecord[] {
    const out: GuardStateRecord[] = [];
    for (const [key, untilMs] of this.#replay.entries(nowMs)) out.push({ kind: 'spa', key, untilMs });
    for (const [key, untilMs] of this.#early) if (untilMs > nowMs) out.push({ kind: 'early', key, untilMs });
    return out;
  }

  /** Puts back what `records` gave before a restart (oldest first); before the first check. */
  restore(records: readonly GuardStateRecord[]): void {
    for (const r of records) {
      if (r.kind === 'spa') this.#replay.restore(r.key, r.untilMs);
      else if (r.kind === 'early') this.#keepEarly(r.key, r.untilMs);
    }
  }

  /**
   * The record of used packets was lost: refuse every packet that could have been used before
   * `nowMs`. One seen then was stamped at most clockSkewSeconds ahead of the clock then.
   */
  refuseEarlierPackets(nowMs: number): void {
    this.#stampedThroughS = Math.floor(nowMs / 1000) + this.config.clockSkewSeconds;
  }

  /** Forgets digests past their lifetime; call now and then. */
  sweep(nowMs: number): void {
    this.#replay.sweep(nowMs);
    for (const [digest, until] of this.#early) if (until <= nowMs) this.#early.delete(digest);
  }

  #rememberEarly(digest: string, untilMs: number): void {
    this.#keepEarly(digest, untilMs);
    this.journal({ kind: 'early', key: digest, untilMs });
  }

  /** Holds at most MAX_EARLY_DIGESTS: a full set gives up the one that would expire soonest. */
  #keepEarly(digest: string, untilMs: number): void {
    if (this.#early.size >= MAX_EARLY_DIGESTS && !this.#early.has(digest)) {
      let soonest: string | undefined;
      let soonestMs = Infinity;
      for (const [d, until] of this.#early) if (until < soonestMs) [soonest, soonestMs] = [d, until];
      this.#early.delete(soonest!);
    }
    this.#early.set(digest, untilMs);
  }
}
