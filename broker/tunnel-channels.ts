// The forwarded channels of one SSH connection to a gateway, each carried to Redis, bounded
// against a gateway whose sshd lies: at most `maxChannels` at once (the rest refused); data
// beyond the window this side advertised closes its channel and is dropped unread (ssh2 would
// buffer it: once a packet takes the window below 0 it accepts everything); so does stderr data,
// which a forwarded TCP connection has none of; and a connection that keeps doing it is
// dropped. Each direction is pumped with back-pressure, so that what waits in memory for a
// slow reader is bounded: ssh2 widens the window only as the channel is read.
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type ssh2 from 'ssh2';
import type { Logger } from '../lib/log.js';

/** Window breaches on one connection before it is dropped. */
export const MAX_WINDOW_VIOLATIONS = 3;
/** Bytes read from one side and not yet taken by the other before reading pauses. */
const PUMP_LIMIT = 256 * 1024;

/** What ssh2 keeps per channel that its type definitions leave out. */
interface ChannelWindow {
  readonly incoming: { readonly id: number; readonly window: number };
}
type ChannelDataHandler = (protocol: unknown, recipient: number, data: Buffer, ...rest: unknown[]) => void;
/** ssh2's protocol object: the handlers it calls per message, looked up at each message. */
interface ProtocolInternals {
  readonly _handlers: { CHANNEL_DATA?: ChannelDataHandler; CHANNEL_EXTENDED_DATA?: ChannelDataHandler };
}

interface Carried {
  readonly channel: ssh2.ClientChannel;
  readonly redis: Socket;
  closing: boolean;
}

/**
 * A warning that a hostile peer can trigger at will: the first of a burst is logged, the rest
 * counted and reported with the next line logged after `intervalMs`.
 */
export class BurstWarning {
  private last = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly msg: string,
    private readonly intervalMs = 10_000,
  ) {}

  warn(fields: Record<string, unknown>): void {
    const now = Date.now();
    if (now - this.last < this.intervalMs) {
      this.suppressed += 1;
      return;
    }
    this.last = now;
    this.log.warn({ ...fields, suppressedSinceLast: this.suppressed }, this.msg);
    this.suppressed = 0;
  }
}

export interface ChannelWarnings {
  readonly refused: BurstWarning;
  readonly violation: BurstWarning;
  readonly redisUnreachable: BurstWarning;
}

export function channelWarnings(log: Logger): ChannelWarnings {
  return {
    refused: new BurstWarning(log, 'tunnel channels over maxChannels refused'),
    violation: new BurstWarning(log, 'gateway broke the SSH channel protocol; channel closed'),
    // Every channel the gateway opens tries again: one line per burst, not one per channel.
    redisUnreachable: new BurstWarning(log, 'redis unreachable for a tunnelled connection'),
  };
}

export class TunnelChannels {
  /** By this side's channel id, from accept until ssh2 forgets the channel. */
  private readonly carried = new Map<number, Carried>();
  private violations = 0;
  /** Connections accepted and carried to Redis. */
  forwarded = 0;
  /** Channels refused over the cap or closed for breaking the protocol. */
  refused = 0;

  constructor(
    private readonly client: ssh2.Client,
    private readonly maxChannels: number,
    private readonly openRedis: () => Socket,
    private readonly warnings: ChannelWarnings,
    /** Called once when the connection broke the protocol too often and must be dropped. */
    private readonly onAbuse: (reason: string) => void,
  ) {}

  get open(): number {
    return this.carried.size;
  }

  get abusive(): boolean {
    return this.violations >= MAX_WINDOW_VIOLATIONS;
  }

  /** Puts the window checks in front of ssh2's own; call right after `client.connect()`. */
  guard(): void {
    const protocol = (this.client as unknown as { _protocol?: ProtocolInternals })._protocol;
    const handlers = protocol?._handlers;
    const data = handlers?.CHANNEL_DATA;
    const extended = handlers?.CHANNEL_EXTENDED_DATA;
    if (handlers === undefined || data === undefined || extended === undefined) {
      // A different ssh2 than the one this was written against: refuse to run unguarded.
      throw new Error('ssh2 internals changed: cannot guard tunnel channel windows');
    }
    handlers.CHANNEL_DATA = (p, recipient, chunk, ...rest) => {
      const c = this.carried.get(recipient);
      if (c?.closing === true) return;
      if (c !== undefined && chunk.length > (c.channel as unknown as ChannelWindow).incoming.window) {
        return this.violation(c, 'data beyond the window');
      }
      data(p, recipient, chunk, ...rest);
    };
    handlers.CHANNEL_EXTENDED_DATA = (p, recipient, chunk, ...rest) => {
      const c = this.carried.get(recipient);
      if (c?.closing === true) return;
      if (c !== undefined) return this.violation(c, 'extended data on a forwarded connection');
      extended(p, recipient, chunk, ...rest);
    };
  }

  /** A 'tcp connection' the gateway opened on our forwarded port. */
  offer(accept: () => ssh2.ClientChannel, reject: () => void): void {
    if (this.carried.size >= this.maxChannels || this.abusive) {
      this.refused += 1;
      this.warnings.refused.warn({ maxChannels: this.maxChannels, open: this.carried.size });
      reject();
      return;
    }
    this.carry(accept());
  }

  /** Refuses a channel without looking (its gateway is over its budget of channel opens). */
  refuse(reject: () => void): void {
    this.refused += 1;
    reject();
  }

  /** Closes every channel and its Redis connection (the SSH connection is going). */
  closeAll(): void {
    for (const c of this.carried.values()) this.close(c);
  }

  private carry(channel: ssh2.ClientChannel): void {
    const id = (channel as unknown as ChannelWindow).incoming.id;
    this.forwarded += 1;
    const redis = this.openRedis();
    const c: Carried = { channel, redis, closing: false };
    this.carried.set(id, c);
    const done = () => this.close(c);
    redis.on('error', (err) => {
      this.warnings.redisUnreachable.warn({ err: err.message });
      done();
    });
    redis.on('close', done);
    channel.on('error', done);
    // ssh2 emits 'close' once the gateway closed its end too and the channel is forgotten:
    // until then it holds a channel id, so it holds its slot.
    channel.on('close', () => {
      done();
      if (this.carried.get(id) === c) this.carried.delete(id);
    });
    pump(channel, redis);
    pump(redis, channel);
  }

  private close(c: Carried): void {
    if (c.closing) return;
    c.closing = true;
    c.redis.destroy();
    c.channel.removeAllListeners('data');
    // ssh2's destroy() sends EOF and CLOSE; what is buffered or still arrives is discarded.
    c.channel.destroy();
    c.channel.resume();
  }

  private violation(c: Carried, what: string): void {
    this.violations += 1;
    this.refused += 1;
    this.warnings.violation.warn({ violation: what, violations: this.violations });
    this.close(c);
    if (this.violations === MAX_WINDOW_VIOLATIONS) {
      this.onAbuse(
        `gateway broke the SSH channel protocol ${this.violations} times (${what}); connection dropped`,
      );
    }
  }
}

/**
 * `from` into `to`, reading on only while at most PUMP_LIMIT bytes wait to be taken by `to`
 * (counted by write callbacks, so an SSH channel's unsent data counts whatever its own
 * high-water mark). The end of `from` ends `to`.
 */
function pump(from: Readable, to: Writable): void {
  let pending = 0;
  from.on('data', (chunk: Buffer) => {
    pending += chunk.length;
    to.write(chunk, () => {
      pending -= chunk.length;
      if (pending <= PUMP_LIMIT && from.isPaused() && !from.destroyed) from.resume();
    });
    if (pending > PUMP_LIMIT) from.pause();
  });
  from.once('end', () => to.end());
}
