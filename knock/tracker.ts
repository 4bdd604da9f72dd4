// Per-source knock state machine. Pure: time comes in as an argument, results go out as return
// values, so the daemon and the unit tests drive it the same way.
//
// For each source address it keeps the sequences that source is part-way through. A knock that
// is the next step advances; a repeat of the step just matched (a retransmitted SYN) is ignored;
// anything else drops that attempt, and the knock may start a new one. An attempt must finish
// within `timeoutMs` of its first knock. At most `maxSources` sources are tracked; the one
// touched longest ago is evicted first. An IPv6 source is its prefix (`ipv6PrefixLength`, /64 by
// default): the addresses of one /64 share one state, so they cannot fill the table and evict
// other sources; the window opens for the address whose knock completed the sequence.
import type { KnockStep } from '../config/knock.js';
import { sourceKey } from '../lib/ip-prefix.js';

export interface Sequence {
  /** Stable id: the static sequence's name, or `client@step` for rotating ones (`previous:client@step`
   * for a client's previous secret during a rotation). */
  readonly id: string;
  /** Client name (rotating) or the static sequence's name, for audit lines. */
  readonly name: string;
  readonly kind: 'static' | 'rotating';
  readonly steps: readonly KnockStep[];
  /**
   * Completing it opens nothing: a rotating sequence of a step beyond the clock tolerance,
   * tracked so the guard can tell a secret holder that its clock is off.
   */
  readonly diagnostic?: boolean;
}

/** Where the tracker finds the sequences valid right now. */
export interface SequenceSource {
  /** Sequences whose first step is this knock. */
  startingWith(step: KnockStep, nowMs: number): readonly Sequence[];
  /** Whether a sequence is still usable (rotating ones are valid once and for two steps). */
  isValid(seq: Sequence, nowMs: number): boolean;
}

interface Attempt {
  readonly seq: Sequence;
  /** Steps matched so far (>= 1). */
  matched: number;
  readonly startedMs: number;
}

interface SourceState {
  attempts: Attempt[];
  lastMs: number;
  /** The address that knocked last (an IPv6 state stands for a whole prefix). */
  lastAddress: string;
}

export interface KnockOutcome {
  /** `skewed`: a diagnostic sequence completed (the knocker's clock is off); nothing opens. */
  readonly kind: 'opened' | 'skewed' | 'failed' | 'expired';
  readonly source: string;
  readonly seq: Sequence;
  readonly reason?: string;
}

export interface TrackerOptions {
  readonly timeoutMs: number;
  readonly maxSources: number;
  /** Attempts kept per source (several sequences may share a first port). */
  readonly maxAttemptsPerSource?: number;
  /** IPv6 sources are tracked per prefix of this length (default 64). */
  readonly ipv6PrefixLength?: number;
}

const sameStep = (a: KnockStep, b: KnockStep | undefined) =>
  b !== undefined && a.port === b.port && a.protocol === b.protocol;

export class KnockTracker {
  readonly #sources = new Map<string, SourceState>();
  readonly #timeoutMs: number;
  readonly #maxSources: number;
  readonly #maxAttempts: number;
  readonly #ipv6PrefixLength: number;
  #evicted = 0;

  constructor(
    private readonly sequences: SequenceSource,
    options: TrackerOptions,
  ) {
    this.#timeoutMs = options.timeoutMs;
    this.#maxSources = options.maxSources;
    this.#maxAttempts = options.maxAttemptsPerSource ?? 8;
    this.#ipv6PrefixLength = options.ipv6PrefixLength ?? 64;
  }

  get size(): number {
    return this.#sources.size;
  }

  get evicted(): number {
    return this.#evicted;
  }

  /** Feeds one knock; returns what it completed, broke or let expire (usually nothing). */
  knock(source: string, step: KnockStep, nowMs: number): KnockOutcome[] {
    const out: KnockOutcome[] = [];
    const key = sourceKey(source, this.#ipv6PrefixLength);
    const state = this.#sources.get(key);
    const next: Attempt[] = [];
    if (state !== undefined) {
      this.#sources.delete(key); // re-inserted below: Map order doubles as LRU order
      for (const a of state.attempts) {
        if (nowMs - a.startedMs > this.#timeoutMs) {
          out.push({ kind: 'expired', source, seq: a.seq, reason: 'sequence timeout' });
        } else if (!this.sequences.isValid(a.seq, nowMs)) {
          out.push({ kind: 'expired', source, seq: a.seq, reason: 'sequence no longer valid' });
        } else if (sameStep(step, a.seq.steps[a.matched])) {
          a.matched += 1;
          if (a.matched === a.seq.steps.length) {
            // Success ends every other attempt of this source too.
            out.push({ kind: a.seq.diagnostic === true ? 'skewed' : 'opened', source, seq: a.seq });
            return out;
          }
          next.push(a);
        } else if (sameStep(step, a.seq.steps[a.matched - 1])) {
          next.push(a); // retransmitted SYN of the step just matched
        } else {
          out.push({
            kind: 'failed',
            source,
            seq: a.seq,
            reason: `wrong port ${step.port}/${step.protocol} at step ${a.matched + 1}`,
          });
        }
      }
    }
    for (const seq of this.sequences.startingWith(step, nowMs)) {
      if (next.length >= this.#maxAttempts) break;
      if (next.some((a) => a.seq.id === seq.id)) continue;
      if (seq.steps.length === 1) {
        out.push({ kind: seq.diagnostic === true ? 'skewed' : 'opened', source, seq });
        return out;
      }
      next.push({ seq, matched: 1, startedMs: nowMs });
    }
    if (next.length > 0) {
      this.#sources.set(key, { attempts: next, lastMs: nowMs, lastAddress: source });
      this.#evictOverflow();
    }
    return out;
  }

  /** Ends attempts past their timeout; call now and then so they are audited even if silent. */
  sweep(nowMs: number): KnockOutcome[] {
    const out: KnockOutcome[] = [];
    for (const [key, state] of this.#sources) {
      if (nowMs - state.lastMs <= this.#timeoutMs) continue;
      const live = state.attempts.filter((a) => nowMs - a.startedMs <= this.#timeoutMs);
      const source = state.lastAddress;
      for (const a of state.attempts) {
        if (!live.includes(a)) out.push({ kind: 'expired', source, seq: a.seq, reason: 'sequence timeout' });
      }
      if (live.length === 0) this.#sources.delete(key);
      else state.attempts = live;
    }
    return out;
  }

  forget(source: string): void {
    this.#sources.delete(sourceKey(source, this.#ipv6PrefixLength));
  }

  #evictOverflow(): void {
    while (this.#sources.size > this.#maxSources) {
      const oldest = this.#sources.keys().next();
      if (oldest.done === true) return;
      this.#sources.delete(oldest.value);
      this.#evicted += 1;
    }
  }
}
