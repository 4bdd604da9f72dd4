// The sequences a guard accepts right now: its static sequences, and each client's rotating
// sequence for the current and the previous time step (clock skew). A rotating sequence is
// valid once: after it opened the window its (client, step) pair is remembered until the step
// can no longer be valid, so a captured knock replays to nothing.
import { parseKnockSequence, type GuardConfig, type KnockStep } from '../config/knock.js';
import { deriveSequence, timeStep } from './rotating.js';
import type { Sequence, SequenceSource } from './tracker.js';

const stepKey = (s: KnockStep) => (s.protocol === 'udp' ? 65536 + s.port : s.port);

interface RotatingSequence extends Sequence {
  readonly client: string;
  readonly step: number;
}

export class SequenceCatalog implements SequenceSource {
  readonly #static: Sequence[];
  readonly #byFirst = new Map<number, Sequence[]>();
  #builtForStep = Number.NaN;
  /** `client@step` of rotating sequences already used. */
  readonly #used = new Set<string>();

  constructor(private readonly config: GuardConfig) {
    this.#static = config.static.map((s) => ({
      id: `static:${s.name}`,
      name: s.name,
      kind: 'static' as const,
      steps: parseKnockSequence(s.sequence),
    }));
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
    return (seq.step === current || seq.step === current - 1) && !this.#used.has(seq.id);
  }

  /** Marks a rotating sequence as spent; call when it opened the window. */
  consume(seq: Sequence, nowMs: number): void {
    if (!isRotating(seq)) return;
    this.#used.add(seq.id);
    this.#builtForStep = Number.NaN; // rebuild without it
    this.#refresh(nowMs);
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
      if (step < current - 1) this.#used.delete(id);
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
    for (const client of r.clients) {
      for (const step of [current, current - 1]) {
        const id = `${client.name}@${step}`;
        if (this.#used.has(id)) continue;
        const steps = deriveSequence(
          { gateway: this.config.gateway, client: client.name, secret: client.secret },
          step,
          r,
        );
        const seq: RotatingSequence = {
          id,
          name: client.name,
          kind: 'rotating',
          steps,
          client: client.name,
          step,
        };
        add(seq);
      }
    }
  }
}

function isRotating(seq: Sequence): seq is RotatingSequence {
  return seq.kind === 'rotating';
}
