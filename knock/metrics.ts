// The knock guard's Prometheus metrics, in a registry of its own (prom-client): what the guard
// already counts (KnockGuard.stats: knocks read, sequences by outcome, windows opened, the
// tracker's size and evictions), read when scraped, and the process's own. Served on loopback by
// lib/metrics-listener.ts. No label carries an address: a flood of sources adds no series.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { GuardStats } from './guard.js';

export const METRIC_PREFIX = 'nonstop_guard_';

const OUTCOMES = ['opened', 'skewed', 'failed', 'expired'] as const;

export class GuardMetrics {
  readonly registry = new Registry();

  constructor(
    stats: () => GuardStats,
    limits: { readonly maxTrackedSources: number },
    options: { readonly processMetrics?: boolean } = {},
  ) {
    const registers = [this.registry];
    /** A counter whose value is one of the guard's own counts, as it is when scraped. */
    const counted = (name: string, help: string, value: (s: GuardStats) => number) =>
      new Counter({
        name: `${METRIC_PREFIX}${name}`,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(value(stats()));
        },
      });
    counted(
      'knocks_total',
      'Knock packets read from the raw sockets (diverted SYNs and UDP datagrams).',
      (s) => s.received,
    );
    counted('malformed_knocks_total', 'Knock packets that held no readable knock.', (s) => s.malformed);
    new Counter({
      name: `${METRIC_PREFIX}sequences_total`,
      help: 'Knock attempts that ended, by outcome: opened (sequence completed), skewed (a rotating sequence of a time step beyond the clock tolerance: nothing opened), failed (a wrong step), expired (too slow, or a rotating sequence that lapsed).',
      labelNames: ['outcome'],
      registers,
      collect() {
        const s = stats();
        this.reset();
        for (const outcome of OUTCOMES) this.inc({ outcome }, s[outcome]);
      },
    });
    counted(
      'windows_opened_total',
      'SSH windows opened for a source address (its nft transaction succeeded).',
      (s) => s.windows,
    );
    counted(
      'window_errors_total',
      'SSH windows that could not be opened (nft failed, or too many pending).',
      (s) => s.windowErrors,
    );
    counted(
      'tracker_evictions_total',
      'Sources dropped from the knock tracker, the least recently seen first, because it was full.',
      (s) => s.evicted,
    );
    new Counter({
      name: `${METRIC_PREFIX}spa_packets_total`,
      help: 'SPA datagrams read, by outcome: opened (a window), refused (authentic, but stale, from the future, replayed or asking for another port), unauthenticated (garbage, a wrong key, a tampered byte).',
      labelNames: ['outcome'],
      registers,
      collect() {
        const s = stats();
        this.reset();
        this.inc({ outcome: 'opened' }, s.spaOpened);
        this.inc({ outcome: 'refused' }, s.spaRefused);
        this.inc({ outcome: 'unauthenticated' }, s.spaUnauthenticated);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}spa_replay_digests`,
      help: 'Digests of accepted SPA packets held against replay, each for the packet maximum age plus the clock skew allowed.',
      registers,
      collect() {
        this.set(stats().spaRemembered);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}tracked_sources`,
      help: 'Sources (an IPv6 source: its prefix) part-way through a knock sequence.',
      registers,
      collect() {
        this.set(stats().tracked);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}tracked_sources_limit`,
      help: 'The most sources the tracker keeps (maxTrackedSources); past it, evictions.',
      registers,
    }).set(limits.maxTrackedSources);
    if (options.processMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    }
  }
}
