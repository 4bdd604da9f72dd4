// The sequences a guard accepts right now: its static sequences, and each client's rotating
// sequence for the previous, the current and the next time step, so a knocking host whose clock
// is up to one step (default 30 s) behind or ahead of the guard's always gets in. A rotating
// sequence is valid once: after it opened the window its (client, step) pair is remembered
// until the step can no longer be valid, so a captured knock replays to nothing.
//
// Beyond that tolerance the catalog also tracks, for diagnosis only, each client's sequences
// for the steps up to SKEW_DIAGNOSIS_SECONDS either side (at most MAX_SKEW_DIAGNOSIS_STEPS): a
// knock that completes one of those opens nothing, but tells the guard that a secret holder's
// clock is that far off. Derivations are cached per (client, step), so a new step costs one
// derivation per client (the step entering the range), not the whole range again.
//
// During a rotation a client also has a `previousSecret`: its sequences for the accepted steps
// open too (not tracked for diagnosis), and a (client, step) is spent by whichever secret used it.
import { parseKnockSequence, type GuardConfig, type KnockStep } from '../config/knock.js';
import { deriveSequence, timeStep } from './rotating.js';
import type { Sequence, SequenceSource } from './tracker.js';
import type { GuardStateRecord } from './guard-state.js';

const stepKey = (s: KnockStep) => (s.protocol === 'udp' ? 65536 + s.port : s.port);

/** How far off a knocking host's clock the guard still recognises (and says so). */
export const SKEW_DIAGNOSIS_SECONDS = 600;
export const MAX_SKEW_DIAGNOSIS_STEPS = 40;

/** Steps either side of the current one that open: one (previous, current, next). */
export const ACCEPTED_STEPS = 1;

interface RotatingSequence extends Sequence {
  readonly client: string;
  readonly step: number;
}

/** What a use spends: one (client, step), whichever of its secrets knocked. */
const useKey = (seq: RotatingSequence) => `${seq.client}@${seq.step}`;

/** Steps either side of the current one that are tracked for diagnosis, accepted ones included. */
export function diagnosisSteps(stepSeconds: number): number {
  return Math.max(
    ACCEPTED_STEPS,
    Math.min(MAX_SKEW_DIAGNOSIS_STEPS, Math.ceil(SKEW_DIAGNOSIS_SECONDS / stepSeconds)),
  );
}

export class SequenceCatalog implements SequenceSource {
  readonly #static: Sequence[];
  readonly #byFirst = new Map<number, Sequence[]>();
  #builtForStep = Number.NaN;
  /** `client@step` of rotating sequences already used. */
  readonly #used = new Set<string>();
  /** Derived ports per `client@step`, for the steps in the diagnosis range. */
  readonly #derived = new Map<string, KnockStep[]>();
  readonly #diagnosisSteps: number;
  /** After a lost state file: every step up to this one counts as spent, for every client. */
  #spentThrough = -Infinity;

  constructor(
    private readonly config: GuardConfig,
    /** Told of every (client, step) spent, to keep it across a restart (knock/guard-state.ts). */
    private readonly journal: (record: GuardStateRecord) => void = () => {},
  ) {
    this.#static = config.static.map((s) => ({
      id: `static:${s.name}`,
      name: s.name,
      kind: 'static' as const,
      steps: parseKnockSequence(s.sequence),
    }));
    this.#diagnosisSteps = diagnosisSteps(config.rotating.stepSeconds);
  }

  /** Ports the kernel must pass to the daemon: static steps plus the rotating range. */
  knockPorts(): { tcp: KnockStep[]; udp: KnockStep[] } {
    const all = this.#static.flatMap((s) => s.steps);
    const unique = (list: KnockStep[]) => [...new Map(list.map((s) => [stepKey(s), s])).values()];
    return {
      tcp: unique(all.filter((s) => s.protocol === 'tcp')),
      udp: unique(all.filter((s) => s.protocol === 'udp')),
    };
  }

  startingWith(step: KnockStep, nowMs: number): readonly Sequence[] {
    this.#refresh(nowMs);
    return this.#byFirst.get(stepKey(step)) ?? [];
  }

  isValid(seq: Sequence, nowMs: number): boolean {
    if (!isRotating(seq)) return true;
    const current = timeStep(nowMs, this.config.rotating.stepSeconds);
    const range = seq.diagnostic === true ? this.#diagnosisSteps : ACCEPTED_STEPS;
    return (
      Math.abs(seq.step - current) <= range &&
      !this.#used.has(useKey(seq)) &&
      (seq.diagnostic === true || seq.step > this.#spentThrough)
    );
  }

  /**
   * How far the knocking host's clock is from this one, as far as a rotating sequence tells:
   * the sequence's step minus the current step, in seconds (positive: the knocker is ahead).
   */
  skewSeconds(seq: Sequence, nowMs: number): number {
    if (!isRotating(seq)) return 0;
    const stepSeconds = this.config.rotating.stepSeconds;
    return (seq.step - timeStep(nowMs, stepSeconds)) * stepSeconds;
  }

  /** Marks a rotating sequence as spent; call when it opened the window. */
  consume(seq: Sequence, nowMs: number): void {
    if (!isRotating(seq)) return;
    this.#used.add(useKey(seq));
    this.journal({ kind: 'knock', key: useKey(seq), untilMs: this.#forgetAtMs(seq.step) });
    this.#builtForStep = Number.NaN; // rebuild without it
    this.#refresh(nowMs);
  }

  /** The spent (client, step) pairs to keep across a restart. */
  records(nowMs: number): GuardStateRecord[] {
    const out: GuardStateRecord[] = [];
    for (const key of this.#used) {
      const untilMs = this.#forgetAtMs(Number(key.slice(key.lastIndexOf('@') + 1)));
      if (untilMs > nowMs) out.push({ kind: 'knock', key, untilMs });
    }
    return out;
  }

  /** Puts back what `records` gave before a restart. */
  restore(records: readonly GuardStateRecord[]): void {
    for (const r of records) if (r.kind === 'knock') this.#used.add(r.key);
    this.#builtForStep = Number.NaN;
  }

  /**
   * The record of spent steps was lost: spend every step a knock could have used before `nowMs`
   * (up to the one after the step then), for every client.
   */
  spendEarlierSteps(nowMs: number): void {
    this.#spentThrough = timeStep(nowMs, this.config.rotating.stepSeconds) + ACCEPTED_STEPS;
    this.#builtForStep = Number.NaN;
  }

  /** When a spent step can no longer be accepted, so need not be remembered (see #refresh). */
  #forgetAtMs(step: number): number {
    return (step + ACCEPTED_STEPS + 1) * this.config.rotating.stepSeconds * 1000;
  }

  get usedCount(): number {
    return this.#used.size;
  }

  #refresh(nowMs: number): void {
    const current = timeStep(nowMs, this.config.rotating.stepSeconds);
    if (current === this.#builtForStep) return;
    this.#builtForStep = current;
    for (const id of this.#used) {
      const step = Number(id.slice(id.lastIndexOf('@') + 1));
      if (step < current - ACCEPTED_STEPS) this.#used.delete(id);
    }
    for (const id of this.#derived.keys()) {
      const step = Number(id.slice(id.lastIndexOf('@') + 1));
      if (Math.abs(step - current) > this.#diagnosisSteps) this.#derived.delete(id);
    }
    this.#byFirst.clear();
    const add = (seq: Sequence) => {
      const key = stepKey(seq.steps[0]!);
      const list = this.#byFirst.get(key);
      if (list === undefined) this.#byFirst.set(key, [seq]);
      else list.push(seq);
    };
    this.#static.forEach(add);
    const r = this.config.rotating;
    // Accepted sequences first, for every client: the tracker keeps a few attempts per source,
    // in this order, so diagnostic ones sharing a first port never crowd out one that opens.
    const accepted: number[] = [];
    const diagnostic: number[] = [];
    for (let offset = -this.#diagnosisSteps; offset <= this.#diagnosisSteps; offset++) {
      (Math.abs(offset) <= ACCEPTED_STEPS ? accepted : diagnostic).push(offset);
    }
    for (const offsets of [accepted, diagnostic]) {
      const opens = offsets === accepted;
      for (const client of r.clients) {
        const secrets: [string, string][] = [['', client.secret]];
        if (opens && client.previousSecret !== undefined) secrets.push(['previous:', client.previousSecret]);
        for (const offset of offsets) {
          const step = current + offset;
          const id = `${client.name}@${step}`;
          if (this.#used.has(id) || (opens && step <= this.#spentThrough)) continue;
          for (const [tag, secret] of secrets) {
            // The step stays last in the key: the sweep above reads it back.
            const key = `${tag}${id}`;
            let steps = this.#derived.get(key);
            if (steps === undefined) {
              steps = deriveSequence({ gateway: this.config.gateway, client: client.name, secret }, step, r);
              this.#derived.set(key, steps);
            }
            const seq: RotatingSequence = {
              id: opens ? `${tag}${id}` : `${id}:skewed`,
              name: client.name,
              kind: 'rotating',
              steps,
              client: client.name,
              step,
              ...(opens ? {} : { diagnostic: true }),
            };
            add(seq);
          }
        }
      }
    }
  }
}

function isRotating(seq: Sequence): seq is RotatingSequence {
  return seq.kind === 'rotating';
}
