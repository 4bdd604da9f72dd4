// KnockGuard: loads the nftables table, reads knocks from the raw sockets, runs the per-source
// state machine and opens the SSH window for a source that knocked right. It fails closed: the
// table stays loaded when the daemon stops or dies, so SSH stays filtered and 80/443 keep going.
import type { GuardConfig, KnockStep } from '../config/knock.js';
import type { Logger } from '../lib/log.js';
import { startMetricsListener, type MetricsListener } from '../lib/metrics-listener.js';
import { sourceKey } from '../lib/ip-prefix.js';
import { ACCEPTED_STEPS, SequenceCatalog } from './catalog.js';
import { GuardStateFile, type GuardStateRecord } from './guard-state.js';
import { KnockListener } from './listener.js';
import { GuardMetrics } from './metrics.js';
import { SpaGate, type SpaOutcome } from './spa-gate.js';
import { runNft } from './nft.js';
import { renderDeleteTable, renderOpenWindow, renderRuleset } from './ruleset.js';
import { KnockTracker, type KnockOutcome } from './tracker.js';

/** Windows waiting for nft at once; more means a flood of valid knocks, which is suspicious. */
const MAX_PENDING_WINDOWS = 4096;

/** A clock-skew line is written at most once per (source, client) in this long. */
export const SKEW_LOG_INTERVAL_MS = 10 * 60_000;
/** (source, client) pairs remembered for that; the oldest is forgotten first. */
const MAX_SKEW_LOG_KEYS = 1024;

/** How often a line sums up the SPA datagrams that failed authentication (none when none did). */
export const SPA_SUMMARY_INTERVAL_MS = 60_000;
/** An authentic SPA packet refused is said once per (source, client, reason) in this long. */
const SPA_REFUSAL_LOG_INTERVAL_MS = 60_000;
/** Distinct sources counted in one summary (beyond that: "at least"). */
const SPA_SUMMARY_MAX_SOURCES = 1024;

/** Says whether a key is due: the first time, then again once `intervalMs` has passed. */
export class OncePer {
  /** When each key was last due (Map order: the oldest first). */
  readonly #last = new Map<string, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly maxKeys: number,
  ) {}

  due(key: string, nowMs: number): boolean {
    const last = this.#last.get(key);
    if (last !== undefined && nowMs - last < this.intervalMs) return false;
    this.#last.delete(key);
    this.#last.set(key, nowMs);
    for (const old of this.#last.keys()) {
      if (this.#last.size <= this.maxKeys) break;
      this.#last.delete(old);
    }
    return true;
  }
}

export interface GuardStats {
  readonly received: number;
  readonly malformed: number;
  readonly tracked: number;
  readonly evicted: number;
  readonly opened: number;
  /** Rotating sequences of a time step beyond the clock tolerance (nothing opened). */
  readonly skewed: number;
  readonly failed: number;
  readonly expired: number;
  /** Source addresses whose SSH window nft added. */
  readonly windows: number;
  /** Windows not opened: nft failed, or too many were pending. */
  readonly windowErrors: number;
  /** SPA datagrams whose packet opened a window. */
  readonly spaOpened: number;
  /** SPA datagrams that failed authentication (garbage, a wrong key, a tampered byte). */
  readonly spaUnauthenticated: number;
  /** Authentic SPA packets refused: stale, from the future, replayed, or asking for too much. */
  readonly spaRefused: number;
  /** SPA digests held against replay. */
  readonly spaRemembered: number;
}

export class KnockGuard {
  readonly #catalog: SequenceCatalog;
  readonly #tracker: KnockTracker;
  #listener: KnockListener | undefined;
  #timers: NodeJS.Timeout[] = [];
  /** nft calls run one after another, in order. */
  #nftQueue: Promise<void> = Promise.resolve();
  /** Addresses waiting for the next window transaction (batched, capped), with their seconds. */
  readonly #pendingOpen = new Map<string, number>();
  #failed: (err: Error) => void = () => {};
  /** Resolves with the error if the guard can no longer read knocks. */
  readonly failed: Promise<Error>;
  #counts = {
    opened: 0,
    skewed: 0,
    failed: 0,
    expired: 0,
    windows: 0,
    windowErrors: 0,
    spaOpened: 0,
    spaUnauthenticated: 0,
    spaRefused: 0,
  };
  readonly #spa: SpaGate | undefined;
  readonly #spaRefusalLogged = new OncePer(SPA_REFUSAL_LOG_INTERVAL_MS, MAX_SKEW_LOG_KEYS);
  /** Failed SPA datagrams since the last summary: by reason, and some of their sources. */
  #spaUnheard = { reasons: new Map<string, number>(), sources: new Set<string>() };
  readonly #skewLogged = new OncePer(SKEW_LOG_INTERVAL_MS, MAX_SKEW_LOG_KEYS);
  #metrics: MetricsListener | undefined;
  #state: GuardStateFile | undefined;

  constructor(
    private readonly config: GuardConfig,
    private readonly log: Logger,
  ) {
    const journal = (r: GuardStateRecord) => this.#state?.record(r);
    this.#catalog = new SequenceCatalog(config, journal);
    this.#tracker = new KnockTracker(this.#catalog, {
      timeoutMs: config.sequenceTimeoutMs,
      maxSources: config.maxTrackedSources,
      ipv6PrefixLength: config.ipv6PrefixLength,
    });
    this.failed = new Promise((resolve) => (this.#failed = resolve));
    if (config.spa !== undefined)
      this.#spa = new SpaGate(config.spa, config.sshPort, config.windowSeconds, journal);
  }

  /** The ruleset this guard loads (for `nonstop guard --print-ruleset` and tests). */
  ruleset(): string {
    return renderRuleset(this.config, this.#catalog.knockPorts());
  }

  async start(): Promise<void> {
    // Table first: even if the sockets then fail, the host is closed, not open.
    await runNft(this.config.nft, this.ruleset());
    // Before the sockets: nothing is admitted until what was spent before the restart is back.
    await this.#loadState();
    // Before the sockets: a metrics port already taken fails the start with nothing left open.
    if (this.config.metrics !== undefined) {
      const metrics = new GuardMetrics(() => this.stats(), this.config);
      this.#metrics = await startMetricsListener(this.config.metrics, metrics.registry, this.log);
    }
    try {
      this.#listener = new KnockListener(
        this.config.divertProtocols,
        (source, step) => this.#onKnock(source, step),
        // raw-socket closes a socket after an error: this guard is deaf now, so say so and let
        // the supervisor restart it (the table stays: SSH stays closed meanwhile).
        (err) => {
          this.log.error({ event: 'socket-error', err: err.message }, 'raw socket error');
          this.#failed(err);
        },
        this.#spa === undefined
          ? undefined
          : { port: this.config.spa!.port, onPacket: (source, payload) => this.#onSpa(source, payload) },
      );
    } catch (err) {
      await this.#metrics?.close();
      this.#metrics = undefined;
      await this.#state?.close();
      this.#state = undefined;
      throw err;
    }
    const sweep = setInterval(() => {
      const now = Date.now();
      this.#report(this.#tracker.sweep(now));
      this.#spa?.sweep(now);
      // Uses that opened nothing (a refused packet is spent too) reach the file here.
      if (this.#state !== undefined && this.#state.pending > 0 && this.#pendingOpen.size === 0)
        this.#nftQueue = this.#nftQueue.then(() => this.#flushState()).then(() => {});
    }, 1000);
    this.#timers.push(sweep);
    if (this.#spa !== undefined)
      this.#timers.push(setInterval(() => this.#summariseSpa(), SPA_SUMMARY_INTERVAL_MS));
    if (this.config.statsIntervalSeconds > 0) {
      const stats = setInterval(
        () =>
          this.log.info({ event: 'stats', ...this.stats(), rssBytes: process.memoryUsage.rss() }, 'stats'),
        this.config.statsIntervalSeconds * 1000,
      );
      this.#timers.push(stats);
    }
    const ports = this.#catalog.knockPorts();
    this.log.info(
      {
        event: 'started',
        gateway: this.config.gateway,
        sshPort: this.config.sshPort,
        staticSequences: this.config.static.length,
        rotatingClients: this.config.rotating.clients.length,
        knockTcpPorts: ports.tcp.length,
        knockUdpPorts: ports.udp.length,
        ...(this.config.spa === undefined
          ? {}
          : { spaPort: this.config.spa.port, spaClients: this.config.spa.clients.length }),
      },
      'knock guard started',
    );
  }

  async stop(): Promise<void> {
    for (const t of this.#timers.splice(0)) clearInterval(t);
    this.#summariseSpa();
    this.#listener?.close();
    this.#listener = undefined;
    await this.#metrics?.close();
    this.#metrics = undefined;
    await this.#nftQueue;
    await this.#flushState();
    await this.#state?.close();
    this.#state = undefined;
    if (this.config.removeTableOnExit) await runNft(this.config.nft, renderDeleteTable());
    this.log.info({ event: 'stopped', tableRemoved: this.config.removeTableOnExit }, 'knock guard stopped');
  }

  /** Where the metrics listener listens, once started (when the config has `metrics`). */
  get metricsAddress(): { readonly address: string; readonly port: number } | undefined {
    return this.#metrics?.address;
  }

  stats(): GuardStats {
    return {
      ...(this.#listener?.stats ?? { received: 0, malformed: 0 }),
      tracked: this.#tracker.size,
      evicted: this.#tracker.evicted,
      ...this.#counts,
      spaRemembered: this.#spa?.remembered ?? 0,
    };
  }

  #onKnock(source: string, step: KnockStep): void {
    const now = Date.now();
    const outcomes = this.#tracker.knock(source, step, now);
    for (const o of outcomes) if (o.kind === 'opened') this.#catalog.consume(o.seq, now);
    this.#report(outcomes, now);
  }

  #report(outcomes: readonly KnockOutcome[], now = Date.now()): void {
    for (const o of outcomes) {
      this.#counts[o.kind] += 1;
      if (o.kind === 'skewed') {
        this.#reportSkew(o, now);
        continue;
      }
      // One audit line per attempt; fail2ban can match `"outcome":"failed"` and `"clientIp"`.
      const audit = {
        event: 'knock',
        outcome: o.kind,
        clientIp: o.source,
        [o.seq.kind === 'static' ? 'sequence' : 'client']: o.seq.name,
      };
      if (o.kind === 'opened') {
        this.#openWindow(o.source);
        this.log.info(
          { ...audit, windowSeconds: this.config.windowSeconds },
          `knock opened ssh for ${o.source}`,
        );
      } else {
        this.log.warn({ ...audit, reason: o.reason }, `knock ${o.kind} from ${o.source}`);
      }
    }
  }

  /**
   * A knock with a client's secret but for a time step beyond the tolerance: the knocking host's
   * clock is off. Said once per source and client every SKEW_LOG_INTERVAL_MS, never per packet
   * or attempt: a broker retrying with a wrong clock writes one line, not a stream.
   */
  #reportSkew(o: KnockOutcome, now: number): void {
    const key = `${sourceKey(o.source, this.config.ipv6PrefixLength)} ${o.seq.name}`;
    if (!this.#skewLogged.due(key, now)) return;
    const skewSeconds = this.#catalog.skewSeconds(o.seq, now);
    const toleranceSeconds = ACCEPTED_STEPS * this.config.rotating.stepSeconds;
    this.log.warn(
      {
        event: 'knock-clock-skew',
        clientIp: o.source,
        client: o.seq.name,
        skewSeconds,
        toleranceSeconds,
      },
      `rotating knock from ${o.source} (client ${o.seq.name}) matches a time step ${Math.abs(skewSeconds)} s ` +
        `${skewSeconds > 0 ? 'ahead of' : 'behind'} this gateway's clock (accepted: within ${toleranceSeconds} s); ` +
        'nothing opened: fix the clock (NTP) on the knocking host',
    );
  }

  #onSpa(source: string, payload: Buffer): void {
    const outcome = this.#spa!.check(source, payload, Date.now());
    if (outcome.kind === 'opened') {
      this.#counts.spaOpened += 1;
      this.#openWindow(outcome.address, outcome.windowSeconds);
      this.log.info(
        {
          event: 'spa',
          outcome: 'opened',
          clientIp: source,
          client: outcome.client,
          openedFor: outcome.address,
          windowSeconds: outcome.windowSeconds,
          user: outcome.message.username,
        },
        `spa opened ssh for ${outcome.address} (client ${outcome.client})`,
      );
    } else if (outcome.kind === 'refused') {
      this.#counts.spaRefused += 1;
      this.#reportSpaRefusal(source, outcome);
    } else {
      // Anyone can send these, from any address: counted and summed up, never a line each.
      this.#counts.spaUnauthenticated += 1;
      const reasons = this.#spaUnheard.reasons;
      reasons.set(outcome.reason, (reasons.get(outcome.reason) ?? 0) + 1);
      if (this.#spaUnheard.sources.size < SPA_SUMMARY_MAX_SOURCES)
        this.#spaUnheard.sources.add(sourceKey(source, this.config.ipv6PrefixLength));
    }
  }

  /** An authentic packet that opened nothing: its client holds a key, so say why, once a while. */
  #reportSpaRefusal(source: string, o: Extract<SpaOutcome, { kind: 'refused' }>): void {
    const key = `${sourceKey(source, this.config.ipv6PrefixLength)} ${o.client} ${o.reason}`;
    if (!this.#spaRefusalLogged.due(key, Date.now())) return;
    const clock = o.reason === 'stale' || o.reason === 'future';
    this.log.warn(
      {
        event: 'spa',
        outcome: 'refused',
        reason: o.reason,
        clientIp: source,
        client: o.client,
        ...(o.skewSeconds === undefined ? {} : { skewSeconds: o.skewSeconds }),
      },
      `spa packet from ${source} (client ${o.client}) refused: ${o.detail}` +
        (clock ? "; if the sender's clock is off, fix it (NTP)" : ''),
    );
  }

  #summariseSpa(): void {
    const { reasons, sources } = this.#spaUnheard;
    if (reasons.size === 0) return;
    const packets = [...reasons.values()].reduce((a, b) => a + b, 0);
    this.#spaUnheard = { reasons: new Map(), sources: new Set() };
    const many = sources.size >= SPA_SUMMARY_MAX_SOURCES;
    this.log.warn(
      {
        event: 'spa-unauthenticated',
        packets,
        sources: sources.size,
        sourcesCapped: many,
        reasons: Object.fromEntries(reasons),
        firstSources: [...sources].slice(0, 8),
      },
      `${packets} spa datagrams from ${many ? 'at least ' : ''}${sources.size} sources failed authentication; nothing opened`,
    );
  }

  #openWindow(address: string, seconds = this.config.windowSeconds): void {
    if (this.#pendingOpen.size >= MAX_PENDING_WINDOWS) {
      this.#counts.windowErrors += 1;
      this.log.error({ event: 'window-error', clientIp: address }, 'too many windows pending; not opened');
      return;
    }
    const idle = this.#pendingOpen.size === 0;
    this.#pendingOpen.set(address, Math.max(seconds, this.#pendingOpen.get(address) ?? 0));
    if (!idle) return; // a transaction is already queued and will take this address too
    this.#nftQueue = this.#nftQueue.then(() => this.#openPending());
  }

  /** One nft transaction for every window pending; what they spent is on disk first. */
  async #openPending(): Promise<void> {
    const pending = [...this.#pendingOpen];
    this.#pendingOpen.clear();
    const batch = pending.map(([a]) => a);
    const failed = (message: string, err?: unknown) => {
      this.#counts.windowErrors += batch.length;
      this.log.error(
        {
          event: 'window-error',
          clientIps: batch.slice(0, 16),
          count: batch.length,
          ...(err === undefined ? {} : { err: (err as Error).message }),
        },
        message,
      );
    };
    // A crash after this loses a window, never a use: a recorded knock stays spent.
    if (!(await this.#flushState())) return failed('cannot open window: what it spent is not on disk');
    try {
      await runNft(this.config.nft, pending.map(([a, secs]) => renderOpenWindow(a, secs)).join(''));
      this.#counts.windows += batch.length;
    } catch (err) {
      failed('cannot open window', err);
    }
  }

  /**
   * Reads `stateFile` back (knock/guard-state.ts) into the replay cache and the spent steps.
   * Unreadable past its header, it cannot tell what was spent: then everything that could have
   * been is refused (a barrier of clockSkewSeconds for SPA, two time steps for knocks).
   */
  async #loadState(): Promise<void> {
    const path = this.config.stateFile;
    if (path === undefined) {
      this.log.warn(
        { event: 'state', stateFile: null },
        'no stateFile: packets and rotating knocks used before a restart are not remembered after it',
      );
      return;
    }
    const now = Date.now();
    let opened: Awaited<ReturnType<typeof GuardStateFile.open>>;
    try {
      opened = await GuardStateFile.open(path, now, () => [
        ...(this.#spa?.records(Date.now()) ?? []),
        ...this.#catalog.records(Date.now()),
      ]);
    } catch (err) {
      throw new Error(`cannot use stateFile ${path}: ${(err as Error).message}`, { cause: err });
    }
    const { file, load, existed } = opened;
    this.#spa?.restore(load.records);
    this.#catalog.restore(load.records);
    this.#state = file;
    const count = (kind: string) => load.records.filter((r) => r.kind === kind).length;
    const fields = {
      event: 'state',
      stateFile: path,
      existed,
      spaDigests: count('spa') + count('early'),
      spentSteps: count('knock'),
      ...(load.tornTail ? { tornTail: true } : {}),
    };
    if (load.lost === undefined) {
      this.log.info(fields, `state read from ${path}`);
      return;
    }
    this.#spa?.refuseEarlierPackets(now);
    this.#catalog.spendEarlierSteps(now);
    this.log.error(
      { ...fields, lost: load.lost },
      `stateFile ${path} is unreadable (${load.lost}): started afresh, refusing every SPA packet and ` +
        'rotating knock that could have been used before now (clients send new ones)',
    );
  }

  /** Writes what was spent since the last time; false (and a log line) if it could not. */
  async #flushState(): Promise<boolean> {
    if (this.#state === undefined) return true;
    try {
      await this.#state.flush();
      return true;
    } catch (err) {
      this.log.error(
        { event: 'state-error', stateFile: this.config.stateFile, err: (err as Error).message },
        'cannot write the state file; no window opens until it can',
      );
      return false;
    }
  }
}
