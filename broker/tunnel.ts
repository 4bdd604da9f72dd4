// One broker→gateway tunnel: knock, SSH in (host key pinned by fingerprint, modern
// algorithms only, keepalives on), ask the gateway's sshd to listen on 127.0.0.1:<remotePort>
// and carry each connection made there to the broker side's Redis (at most tunnels.maxChannels
// at once, each held to the window it was given: tunnel-channels.ts), reading from the gateway
// no faster than its budget of channel opens and SSH messages (tunnel-budget.ts). Any drop: back
// off (exponential, jittered, capped), knock again, reconnect, forward again, until closed.
//
// Keepalives stay on while a tunnel is paused for being over budget, and count as ever: a pause
// lasts until 50 ms of the budget has refilled, far below keepaliveIntervalMs, so a tunnel that
// goes over budget now and then answers its keepalives on time. A gateway that stays over
// budget queues its messages faster than the broker reads them, and everything else it sends
// (keepalive answers, the closes of its channels, which free their Redis connections) waits
// behind that queue, which would take minutes to drain at the budget's rate. So a connection
// over budget for OVERRUN_DROP_MS (2 s) without a break is dropped, its queue with it, well
// before keepaliveIntervalMs × keepaliveCountMax would drop it, and the reconnect backs off as
// after a failure; the buckets outlive the connection, so a reconnect brings no fresh burst. A
// legitimately busy tunnel never gets there: the defaults are several times what a broker can
// serve.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { GatewaySsh, TunnelOptions } from '../config/schemas/broker.js';
import { errors, isNonstopError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Knocker } from './knocker.js';
import {
  budgetWarnings,
  TunnelBudget,
  tunnelBuckets,
  type BudgetWarnings,
  type TunnelBuckets,
} from './tunnel-budget.js';
import { channelWarnings, TunnelChannels, type ChannelWarnings } from './tunnel-channels.js';

export type TunnelState = 'connecting' | 'up' | 'backing-off' | 'closed';
export const TUNNEL_STATES: readonly TunnelState[] = ['connecting', 'up', 'backing-off', 'closed'];

export interface TunnelStatus {
  readonly gatewayId: string;
  readonly gateway: string;
  readonly remotePort: number;
  readonly state: TunnelState;
  /** When the tunnel entered this state (ISO 8601). */
  readonly since: string;
  readonly lastError: string | null;
  /** Connection attempts after the first one (each drop or failure adds one). */
  readonly reconnects: number;
  /** Connections carried to Redis so far. */
  readonly forwarded: number;
  /** Channels carried to Redis now (at most `tunnels.maxChannels`). */
  readonly channels: number;
  /** Channels refused over the cap, or closed for breaking the protocol, so far. */
  readonly refused: number;
  /** Times reading from the gateway paused, over its budget of channel opens or messages. */
  readonly throttled: number;
  /** Time spent paused so far, in ms. */
  readonly pausedMs: number;
  /** Paused now. */
  readonly paused: boolean;
}

/** What ssh2 may negotiate: the intersection of OpenSSH 9.2's modern set and ssh2's. */
const ALGORITHMS = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org'],
  cipher: ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com'],
  serverHostKey: ['ssh-ed25519'],
  hmac: ['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com'],
  compress: ['none'],
} satisfies ssh2.Algorithms;

/** SHA256:<unpadded base64>, as `ssh-keygen -l` prints a key's fingerprint. */
export function sshFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

export interface TunnelTarget {
  readonly host: string;
  readonly port: number;
}

export class GatewayTunnel {
  private state: TunnelState = 'connecting';
  private since = new Date();
  private lastError: string | null = null;
  private reconnects = 0;
  private forwarded = 0;
  private refused = 0;
  private throttled = 0;
  private pausedMs = 0;
  private closed = false;
  private client: ssh2.Client | undefined;
  /** Whether the current connection attempt got a TCP connection to SSH. */
  private sshReached = false;
  /** The current connection's channels. */
  private channels: TunnelChannels | undefined;
  /** The current connection's budget. */
  private budget: TunnelBudget | undefined;
  private readonly warnings: ChannelWarnings;
  private readonly budgetWarnings: BudgetWarnings;
  private readonly buckets: TunnelBuckets;
  private wake: () => void = () => {};
  private loop: Promise<void> | undefined;
  private readonly log: Logger;
  /** Read at start (a missing file fails there) and again before each connection (a rotation). */
  private privateKey: Buffer;

  constructor(
    readonly gatewayId: string,
    private readonly ssh: GatewaySsh,
    private readonly target: TunnelTarget,
    private readonly options: TunnelOptions,
    private readonly knocker: Knocker,
    log: Logger,
  ) {
    this.log = log.child({ gatewayId, gateway: `${ssh.host}:${ssh.port}`, remotePort: ssh.remotePort });
    this.warnings = channelWarnings(this.log);
    this.budgetWarnings = budgetWarnings(this.log);
    this.buckets = tunnelBuckets(options);
    try {
      this.privateKey = readFileSync(ssh.privateKey);
    } catch (err) {
      throw errors.CONFIG_UNREADABLE(
        `gateways[${gatewayId}].ssh.privateKey: cannot read ${ssh.privateKey}`,
        undefined,
        { cause: err },
      );
    }
  }

  /**
   * The key file's content now, so that a rotated key (README, "Rotating credentials") is used
   * from the next connection on without a restart; the last good one if the file is unreadable.
   */
  private rereadPrivateKey(): Buffer {
    try {
      const key = readFileSync(this.ssh.privateKey);
      if (!key.equals(this.privateKey)) {
        this.log.info(
          { event: 'ssh-key-changed' },
          'the SSH private key file changed; connecting with the new key',
        );
        this.privateKey = key;
      }
    } catch (err) {
      this.log.warn(
        { event: 'ssh-key-unreadable', err: (err as Error).message },
        'cannot read the SSH private key again; connecting with the key read before',
      );
    }
    return this.privateKey;
  }

  start(): void {
    this.loop ??= this.run();
  }

  status(): TunnelStatus {
    return {
      gatewayId: this.gatewayId,
      gateway: `${this.ssh.host}:${this.ssh.port}`,
      remotePort: this.ssh.remotePort,
      state: this.state,
      since: this.since.toISOString(),
      lastError: this.lastError,
      reconnects: this.reconnects,
      forwarded: this.forwarded + (this.channels?.forwarded ?? 0),
      channels: this.channels?.open ?? 0,
      refused: this.refused + (this.channels?.refused ?? 0),
      throttled: this.throttled + (this.budget?.throttled ?? 0),
      pausedMs: Math.round(this.pausedMs + (this.budget?.pausedMs ?? 0)),
      paused: this.budget?.paused ?? false,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake();
    this.client?.end();
    this.budget?.closing();
    this.channels?.closeAll();
    await this.loop;
    this.setState('closed');
  }

  private setState(state: TunnelState): void {
    if (this.state === state) return;
    this.state = state;
    this.since = new Date();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      this.setState('connecting');
      let wasUp = false;
      let knocked = false;
      try {
        const address = await this.knocker.knock(this.ssh.host);
        knocked = true;
        const client = await this.connect(address);
        if (this.closed) {
          client.end();
          break;
        }
        const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
        await Promise.race([
          forwardIn(client, this.ssh.remotePort),
          closed.then(() => Promise.reject(new Error('connection closed before the forward was set up'))),
        ]);
        this.setState('up');
        wasUp = true;
        this.lastError = null;
        this.log.info('tunnel up');
        await closed;
        if (!this.closed) {
          this.lastError ??= 'connection closed';
          this.log.warn({ err: this.lastError }, 'tunnel down; reconnecting');
        }
      } catch (err) {
        this.client?.end();
        this.lastError = describe(err);
        // The knock went out, then no TCP connection within the timeout: SSH stayed filtered
        // (the knocker may say why).
        if (knocked && !this.sshReached && (err as { level?: unknown }).level === 'client-timeout') {
          this.knocker.sshAnswered?.(false);
        }
        // A host key mismatch was logged, loudly, where it was found.
        if (!this.closed && !(isNonstopError(err) && err.code === errors.TUNNEL_HOST_KEY_MISMATCH.code)) {
          this.log.warn({ err: this.lastError }, 'tunnel could not be set up; retrying');
        }
      }
      if (this.closed) break;
      // A gateway that broke the channel protocol, or was dropped while over its budget (its
      // keepalive answers stuck behind its own flood), gets no quick retry for having been up.
      const abusive =
        this.channels?.abusive === true || this.budget?.overrun === true || this.budget?.paused === true;
      this.retireChannels();
      failures = wasUp && !abusive ? 0 : failures + 1;
      this.reconnects += 1;
      this.setState('backing-off');
      await this.sleep(this.backoff(failures));
    }
  }

  /** Exponential in consecutive failures, capped, with "equal jitter" (half fixed, half random). */
  private backoff(failures: number): number {
    const { backoffInitialMs, backoffMaxMs } = this.options;
    const ceiling = Math.min(backoffMaxMs, backoffInitialMs * 2 ** Math.min(failures, 30));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /** Folds the last connection's counts into the totals and closes what is left of it. */
  private retireChannels(): void {
    const channels = this.channels;
    if (channels === undefined) return;
    channels.closeAll();
    this.forwarded += channels.forwarded;
    this.refused += channels.refused;
    this.channels = undefined;
    const budget = this.budget;
    if (budget === undefined) return;
    budget.stop();
    this.throttled += budget.throttled;
    this.pausedMs += budget.pausedMs;
    this.budget = undefined;
  }

  private connect(address: string): Promise<ssh2.Client> {
    this.retireChannels();
    return new Promise((resolve, reject) => {
      const client = new ssh2.Client();
      this.client = client;
      this.sshReached = false;
      client.once('connect', () => {
        this.sshReached = true;
        this.knocker.sshAnswered?.(true);
      });
      let mismatch: Error | undefined;
      const channels = new TunnelChannels(
        client,
        this.options.maxChannels,
        () => this.openRedis(),
        this.warnings,
        (reason) => {
          this.lastError = reason;
          this.log.warn({ err: reason }, 'dropping the connection to a gateway that breaks the SSH protocol');
          client.destroy();
        },
      );
      this.channels = channels;
      const budget = new TunnelBudget(
        client,
        this.buckets,
        this.budgetWarnings,
        (reason) => {
          this.lastError = reason;
          this.log.warn({ err: reason }, 'dropping the connection to a gateway that stays over its budget');
        },
        // A gateway flooding its tunnel port: the channels it holds are closed now (their Redis
        // connections freed at once; their closes from its side wait behind its flood) and what
        // it opens until it lets up is refused.
        () => channels.closeAll(),
      );
      this.budget = budget;
      client.on('tcp connection', (info, accept, rejectConnection) => {
        if (info.destPort !== this.ssh.remotePort) return rejectConnection();
        if (budget.flooding) return channels.refuse(rejectConnection);
        channels.offer(accept, rejectConnection);
      });
      client.once('close', () => channels.closeAll());
      client.once('ready', () => {
        try {
          budget.verify();
        } catch (err) {
          this.log.error({ err: describe(err) }, 'refusing to run a tunnel without its budget');
          client.destroy();
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        // Small writes go out at once: with Nagle's algorithm on, a request and its reply over
        // the multiplexed connection wait on delayed ACKs (tens of ms each at low traffic).
        client.setNoDelay(true);
        resolve(client);
      });
      client.once('close', () => reject(mismatch ?? new Error('connection closed during the handshake')));
      client.on('error', (err) => {
        this.lastError = describe(mismatch ?? err);
        reject(mismatch ?? err);
      });
      client.connect({
        host: address,
        port: this.ssh.port,
        username: this.ssh.user,
        privateKey: this.rereadPrivateKey(),
        algorithms: ALGORITHMS,
        hostVerifier: (key: Buffer) => {
          const got = sshFingerprint(key);
          if (got === this.ssh.hostKeyFingerprint) return true;
          mismatch = errors.TUNNEL_HOST_KEY_MISMATCH(
            `gateway ${this.gatewayId} (${this.ssh.host}:${this.ssh.port}): SSH host key ${got} ` +
              `does not match the pinned ${this.ssh.hostKeyFingerprint}; refusing to connect`,
          );
          this.log.error(
            { expected: this.ssh.hostKeyFingerprint, got },
            "gateway's SSH host key does not match the pinned fingerprint; refusing to connect",
          );
          return false;
        },
        readyTimeout: this.options.connectTimeoutMs,
        keepaliveInterval: this.options.keepaliveIntervalMs,
        keepaliveCountMax: this.options.keepaliveCountMax,
      });
      channels.guard();
      budget.guard();
    });
  }

  /** A connection to the broker side's Redis for one channel the gateway opened. */
  private openRedis(): Socket {
    const redis = tcpConnect(this.target.port, this.target.host);
    redis.setNoDelay(true);
    return redis;
  }
}

function forwardIn(client: ssh2.Client, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    client.forwardIn('127.0.0.1', port, (err) => {
      if (err === undefined || err === null) return resolve();
      reject(
        errors.TUNNEL_FAILED(
          `the gateway refused to listen on 127.0.0.1:${port} (${err.message}); ` +
            'a previous session may still hold it, or permitlisten does not allow it',
          undefined,
          { cause: err },
        ),
      );
    });
  });
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
