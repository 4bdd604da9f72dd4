// Where a broker decides which gateways answer whose ACME challenges: each gateway's checked
// outbox comes in (from its cell, or from its worker in a one-process broker), is checked once
// more against the names the broker's config says that gateway serves, and goes out to every
// gateway that serves the answer's name (the publisher included: seeing its own answer relayed
// tells it a broker took it). A compromised gateway's cell can claim nothing beyond its own
// gateway's names: the hub knows which cell spoke. Loads nothing but lib/acme-relay.ts, so the
// parent of the cells stays small.
import { checkAnswer, type RelayedAnswer } from '../lib/acme-relay.js';

export interface ServedNames {
  readonly id: string;
  readonly names?: readonly string[];
}

/** Hands `source`'s answers for `target` to target's inbox (empty: it has none any more). */
export type Deliver = (target: string, source: string, answers: readonly RelayedAnswer[]) => void;

export class ChallengeRelayHub {
  readonly #names = new Map<string, ReadonlySet<string>>();
  /** What each source last published (checked), by source. */
  readonly #latest = new Map<string, readonly RelayedAnswer[]>();
  /** What each target was last handed from each source, as JSON, by target then source. */
  readonly #delivered = new Map<string, Map<string, string>>();
  /** Answers the hub refused (a cell claiming a name its gateway does not serve, or malformed). */
  refused = 0;

  constructor(
    gateways: readonly ServedNames[],
    private readonly deliver: Deliver,
    private readonly now: () => number = Date.now,
  ) {
    for (const g of gateways) this.#names.set(g.id, new Set((g.names ?? []).map((n) => n.toLowerCase())));
  }

  /** `source`'s whole outbox, as its cell checked it; `answers` is unknown (it crossed IPC). */
  published(source: string, answers: unknown): void {
    const allowed = this.#names.get(source);
    if (allowed === undefined) return;
    const now = this.now();
    const kept: RelayedAnswer[] = [];
    for (const a of Array.isArray(answers) ? answers.slice(0, 64) : []) {
      const check = checkAnswer(a, allowed, now);
      if (check.ok) kept.push(check.answer);
      else this.refused += 1;
    }
    this.#latest.set(source, kept);
    for (const target of this.#names.keys()) this.#hand(target, source, false);
  }

  /** A target (re)started with an empty inbox: hand it every source's answers for it. */
  resend(target: string): void {
    this.#delivered.get(target)?.clear();
    for (const source of this.#latest.keys()) this.#hand(target, source, true);
  }

  #hand(target: string, source: string, always: boolean): void {
    const names = this.#names.get(target);
    if (names === undefined) return;
    const now = this.now();
    const answers = (this.#latest.get(source) ?? []).filter(
      (a) => names.has(a.identifier) && a.expiresAt > now,
    );
    let sent = this.#delivered.get(target);
    if (sent === undefined) this.#delivered.set(target, (sent = new Map<string, string>()));
    const text = JSON.stringify(answers);
    if (!always && (sent.get(source) ?? '[]') === text) return;
    sent.set(source, text);
    this.deliver(target, source, answers);
  }
}
