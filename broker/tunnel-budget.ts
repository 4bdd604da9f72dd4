// What one gateway's sshd may make the broker's single event loop do: a budget of channel opens
// and a budget of SSH messages per tunnel, each a token bucket. Over budget, the broker stops
// reading the tunnel's TCP socket until the budget has refilled: the kernel's receive window
// fills and the gateway's sshd is held back, and the broker spends no CPU on that gateway
// meanwhile. Only the tunnel over budget stalls (its established channels too); every other
// tunnel is read as before.
//
// Enforced between ssh2's socket and its parser: ssh2 parses every chunk read from the socket
// in one call, and one 64 KiB read holds hundreds of messages, so the chunk is handed over in
// slices that the budget can pay for, and the rest goes back to the front of the socket's
// buffer (`unshift`) to be read again once reading resumes.
import type { Socket } from 'node:net';
import type ssh2 from 'ssh2';
import type { TunnelOptions } from '../config/schemas/broker.js';
import type { Logger } from '../lib/log.js';
import { BurstWarning } from './tunnel-channels.js';

/**
 * The smallest SSH packet on the wire: 4 bytes of length, then at least 16 (before the first key
 * exchange: no MAC; after it, chacha20-poly1305 and AES-GCM add 16 of tag). A slice of n bytes
 * holds at most n / 16 messages, whatever a hostile sshd sends.
 */
export const MIN_PACKET_BYTES = 16;
/** The most handed to ssh2's parser in one call: bounds the event loop's turn on one tunnel. */
export const MAX_SLICE_BYTES = 16 * 1024;
/**
 * What a key exchange the gateway starts again costs the message budget. Its messages pass ssh2's
 * key exchange code, not the per-message hook, and each costs the broker a curve25519 agreement,
 * an ed25519 verification and key derivation: around a millisecond of CPU here (the re-key test),
 * some hundreds of small messages. An honest sshd re-keys after a GiB or an hour; a hostile one
 * could re-key as fast as round trips go, and is held to messagesPerSecond / REKEY_MESSAGES key
 * exchanges a second (20 with the defaults).
 */
export const REKEY_MESSAGES = 1000;
/**
 * A gateway over budget without a break for this long is dropped (the tunnel reconnects with
 * backoff, as after a failure). Everything it sends waits behind what it queued, the closes of
 * its channels too: their Redis connections would be held, at the budget's rate, for as long
 * as its queue takes to drain. An honest gateway is never over budget for more than a moment.
 */
export const OVERRUN_DROP_MS = 2000;
/** A pause that starts within this long of the last one's end continues the same overrun. */
const OVERRUN_GAP_MS = 250;
/** A pause lasts until this much of a second's rate has refilled (less, if the burst is small). */
const RESUME_SECONDS = 0.05;

/**
 * Tokens refill at `ratePerSecond` up to `burst`. `take` always succeeds and may run the
 * balance below zero: what was already read and decrypted is processed, and the debt is paid
 * off by pausing for longer, so that the rate over time holds exactly.
 */
export class TokenBucket {
  private level: number;
  private at: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(ratePerSecond > 0) || !(burst >= 1)) {
      throw new RangeError(
        `a token bucket needs a rate above 0 and a burst of at least 1 (got ${ratePerSecond}, ${burst})`,
      );
    }
    this.level = burst;
    this.at = now();
  }

  /** The balance now (below zero while in debt). */
  get tokens(): number {
    const now = this.now();
    this.level = Math.min(this.burst, this.level + ((now - this.at) / 1000) * this.ratePerSecond);
    this.at = now;
    return this.level;
  }

  take(n = 1): void {
    this.level = this.tokens - n;
  }

  /** Milliseconds until the balance is back to `level` (0 if it is there already). */
  msUntil(level: number): number {
    const missing = Math.min(level, this.burst) - this.tokens;
    return missing <= 0 ? 0 : (missing / this.ratePerSecond) * 1000;
  }

  /** The balance a pause waits for: RESUME_SECONDS of refill, at least one token. */
  get resumeLevel(): number {
    return Math.min(this.burst, Math.max(1, this.ratePerSecond * RESUME_SECONDS));
  }
}

export type BudgetKind = 'channel opens' | 'messages';

/** A tunnel's buckets: kept across its connections, so that a reconnect brings no fresh burst. */
export interface TunnelBuckets {
  readonly opens: TokenBucket;
  readonly messages: TokenBucket;
}

export function tunnelBuckets(
  options: Pick<
    TunnelOptions,
    'channelOpensPerSecond' | 'channelOpenBurst' | 'messagesPerSecond' | 'messageBurst'
  >,
  now: () => number = () => performance.now(),
): TunnelBuckets {
  return {
    opens: new TokenBucket(options.channelOpensPerSecond, options.channelOpenBurst, now),
    messages: new TokenBucket(options.messagesPerSecond, options.messageBurst, now),
  };
}

export interface BudgetCounts {
  /** Times reading from the gateway was paused for being over budget. */
  readonly throttled: number;
  /** Time spent paused, in ms (including a pause still going on). */
  readonly pausedMs: number;
}

export interface BudgetWarnings {
  readonly opens: BurstWarning;
  readonly messages: BurstWarning;
}

export function budgetWarnings(log: Logger): BudgetWarnings {
  const msg = (what: string) => `gateway over its budget of SSH ${what}; reading from its tunnel paused`;
  return {
    opens: new BurstWarning(log, msg('channel opens')),
    messages: new BurstWarning(log, msg('messages')),
  };
}

type Handler = (protocol: unknown, ...rest: unknown[]) => void;
/** ssh2's protocol object, as far as the budget reaches into it. */
interface ProtocolInternals {
  parse: (chunk: Buffer, start: number, end: number) => void;
  /** Called for every message ssh2 dispatches outside a key exchange (a no-op in the client). */
  _onPacket: () => void;
  readonly _handlers: { CHANNEL_OPEN?: Handler };
}

export class TunnelBudget implements BudgetCounts {
  readonly opens: TokenBucket;
  readonly messages: TokenBucket;
  throttled = 0;
  private pausedTotal = 0;
  private pausedSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sock: Socket | undefined;
  /** Bytes and messages seen: proof, once the connection is up, that the hooks are in the path. */
  private parsed = 0;
  private counted = 0;
  private isClosing = false;
  private overSince = 0;
  private lastPauseEnd: number | undefined;
  /** True once the connection was dropped for being over budget for OVERRUN_DROP_MS. */
  overrun = false;
  private floodingOpens = false;
  /** Key exchanges completed on this connection (the first included). */
  keyExchanges = 0;

  constructor(
    private readonly client: ssh2.Client,
    buckets: TunnelBuckets,
    private readonly warnings: BudgetWarnings,
    /** Called once, when the gateway stayed over budget for OVERRUN_DROP_MS; the socket is then destroyed. */
    private readonly onOverrun: (reason: string) => void = () => {},
    /** Called when the gateway runs out of channel opens (at the start of each such flood). */
    private readonly onOpenFlood: () => void = () => {},
    private readonly now: () => number = () => performance.now(),
  ) {
    this.opens = buckets.opens;
    this.messages = buckets.messages;
  }

  get pausedMs(): number {
    return this.pausedTotal + (this.pausedSince === undefined ? 0 : this.now() - this.pausedSince);
  }

  get paused(): boolean {
    return this.pausedSince !== undefined;
  }

  /**
   * From the moment the gateway has been out of channel opens for OVERRUN_GAP_MS until its
   * bucket is back at half its burst: it is flooding, and what it opens meanwhile is refused.
   */
  get flooding(): boolean {
    if (this.floodingOpens && this.opens.tokens >= this.opens.burst / 2) this.floodingOpens = false;
    return this.floodingOpens;
  }

  /**
   * Puts the budget between ssh2's socket and its parser; call right after `client.connect()`
   * (before the socket has delivered anything). Throws if ssh2 is not the one this was written
   * against: the tunnel must not run unbounded.
   */
  guard(): void {
    const internals = this.client as unknown as { _protocol?: ProtocolInternals; _sock?: unknown };
    const protocol = internals._protocol;
    const sock = internals._sock as Socket | undefined;
    const parse = protocol?.parse;
    const onPacket = protocol?._onPacket;
    const open = protocol?._handlers?.CHANNEL_OPEN;
    if (
      protocol === undefined ||
      typeof parse !== 'function' ||
      typeof onPacket !== 'function' ||
      typeof open !== 'function' ||
      Object.prototype.hasOwnProperty.call(protocol, 'parse') ||
      typeof sock?.pause !== 'function' ||
      typeof sock.unshift !== 'function'
    ) {
      throw new Error('ssh2 internals changed: cannot hold the tunnel to its budget of SSH messages');
    }
    this.sock = sock;
    // ssh2's socket listener looks `parse` up on the instance at every chunk.
    protocol.parse = (chunk, start, end) =>
      this.feed(chunk.subarray(start, end), (piece) => parse.call(protocol, piece, 0, piece.length));
    protocol._onPacket = () => {
      this.counted += 1;
      this.messages.take();
      onPacket.call(protocol);
    };
    protocol._handlers.CHANNEL_OPEN = (p, ...rest) => {
      this.opens.take();
      open(p, ...rest);
    };
    // ssh2 emits 'handshake' at the end of every key exchange; the first is the connection's own.
    this.client.on('handshake', () => {
      this.keyExchanges += 1;
      if (this.keyExchanges > 1) this.messages.take(REKEY_MESSAGES);
    });
  }

  /**
   * Throws unless messages went through both hooks; call once the connection is up (key
   * exchange, authentication and its answer have been read by then).
   */
  verify(): void {
    if (this.parsed === 0 || this.counted === 0) {
      throw new Error('ssh2 internals changed: the tunnel budget saw none of the SSH messages read');
    }
  }

  /**
   * The connection is being closed: a paused socket is destroyed now, and one that would pause
   * later is destroyed then. Otherwise the end of the connection would wait behind what the
   * gateway queued, read at the budget's rate.
   */
  closing(): void {
    this.isClosing = true;
    if (this.paused) this.sock?.destroy();
  }

  /** Stops the timer of a pause (the connection is gone). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.endPause();
  }

  /** Hands `data` to the parser in slices the budget pays for; what it cannot pay for waits. */
  private feed(data: Buffer, parse: (piece: Buffer) => void): void {
    let at = 0;
    while (at < data.length) {
      const bytes = this.affordable();
      if (bytes === 0) return this.pause(data.subarray(at));
      const end = Math.min(data.length, at + bytes);
      this.parsed += end - at;
      parse(data.subarray(at, end));
      at = end;
    }
  }

  /**
   * Bytes that may go to the parser now: no more than hold as many messages (and so channel
   * opens) as both budgets have tokens for, so that a slice never takes a bucket more than one
   * message (the one it ends inside) into debt.
   */
  private affordable(): number {
    const n = Math.floor(Math.min(this.messages.tokens, this.opens.tokens));
    return n < 1 ? 0 : Math.min(MAX_SLICE_BYTES, n * MIN_PACKET_BYTES);
  }

  private pause(rest: Buffer): void {
    const sock = this.sock;
    if (sock === undefined || sock.destroyed) return;
    if (this.isClosing) {
      sock.destroy();
      return;
    }
    const now = this.now();
    if (this.lastPauseEnd === undefined || now - this.lastPauseEnd > OVERRUN_GAP_MS) this.overSince = now;
    if (this.pausedSince === undefined && now - this.overSince >= OVERRUN_DROP_MS) {
      this.overrun = true;
      this.onOverrun(
        `gateway over its budget of SSH ${this.opens.tokens < 1 ? 'channel opens' : 'messages'} for ` +
          `${Math.round(now - this.overSince)} ms without a break; connection dropped`,
      );
      sock.destroy();
      return;
    }
    // Paused first, so that unshift() buffers instead of emitting; with the buffer past its
    // high-water mark the socket stops reading from the kernel.
    sock.pause();
    sock.unshift(rest);
    if (this.pausedSince !== undefined) return;
    this.pausedSince = this.now();
    this.throttled += 1;
    const opens = this.opens.tokens < 1;
    // Flooding, not a moment at the edge of the budget: out of opens for OVERRUN_GAP_MS already.
    if (opens && now - this.overSince >= OVERRUN_GAP_MS && !this.flooding) {
      this.floodingOpens = true;
      this.onOpenFlood();
    }
    const bucket = opens ? this.opens : this.messages;
    const wait = Math.max(
      this.opens.msUntil(this.opens.resumeLevel),
      this.messages.msUntil(this.messages.resumeLevel),
    );
    (opens ? this.warnings.opens : this.warnings.messages).warn({
      budget: opens ? 'channel opens' : 'messages',
      ratePerSecond: bucket.ratePerSecond,
      burst: bucket.burst,
      pauseMs: Math.ceil(wait),
      throttled: this.throttled,
    });
    this.timer = setTimeout(() => this.resume(), Math.max(1, Math.ceil(wait)));
  }

  private resume(): void {
    this.timer = undefined;
    const wait = Math.max(
      this.opens.msUntil(this.opens.resumeLevel),
      this.messages.msUntil(this.messages.resumeLevel),
    );
    // A timer may fire a little early.
    if (wait > 0) {
      this.timer = setTimeout(() => this.resume(), Math.max(1, Math.ceil(wait)));
      return;
    }
    this.endPause();
    if (this.sock !== undefined && !this.sock.destroyed) this.sock.resume();
  }

  private endPause(): void {
    if (this.pausedSince === undefined) return;
    const now = this.now();
    this.pausedTotal += now - this.pausedSince;
    this.pausedSince = undefined;
    this.lastPauseEnd = now;
  }
}
