// Start and recovery times of the nonstop system: broker start → first request served through a
// gateway; a gateway's sshd killed and restarted → served again; one of two brokers killed →
// next request served. A prober in the internet host sends a request every 20 ms throughout,
// so each figure is read off its answers rather than off a polling loop's own pace.
import type { Host, HostProcess } from '../world/world.js';
import type { Recovery } from './report.js';

export interface Probe {
  readonly sent: number;
  readonly done: number;
  readonly status: number;
}

/** What the recovery measurements need of the three-tier world. */
export interface FaultWorld {
  readonly inet: Host;
  readonly gatewayUrl: string;
  readonly gatewayCa: string;
  killBroker(id: string): Promise<void>;
  startBroker(id: string): Promise<void>;
  killSshd(gateway: string): Promise<void>;
  startSshd(gateway: string): Promise<void>;
  /** The broker's log lines (pino JSON) since it was last started. */
  brokerLog(id: string): Record<string, unknown>[];
  /** The broker that carries the gateway's queue now (the prober keeps traffic flowing). */
  carrier(): Promise<string>;
  /** Resolves once every broker's tunnel is up in every gateway again. */
  waitUntilServing(timeoutMs: number): Promise<void>;
  readonly brokerIds: readonly string[];
  readonly gatewayId: string;
}

class Prober {
  readonly #proc: HostProcess;

  constructor(host: Host, url: string, ca: string) {
    this.#proc = host.node('dist/bench/prober.js', [url, ca, '20']);
  }

  ready(): Promise<string> {
    return this.#proc.waitForLine((l) => l.includes('"ready"'), 20000);
  }

  answers(): Probe[] {
    return this.#proc
      .jsonLines()
      .filter((l) => typeof l.status === 'number')
      .map((l) => l as unknown as Probe);
  }

  /** The first 201 for a request sent at or after `from`. */
  async firstSuccess(from: number, timeoutMs: number): Promise<Probe> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ok = this.answers()
        .filter((p) => p.sent >= from && p.status === 201)
        .sort((a, b) => a.sent - b.sent)[0];
      if (ok !== undefined) return ok;
      if (Date.now() > deadline) throw new Error(`no request served within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits until answers sent after `from` are no longer 201 (the fault took effect). */
  async firstFailure(from: number, timeoutMs: number): Promise<Probe> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const bad = this.answers().find((p) => p.sent >= from && p.status !== 201);
      if (bad !== undefined) return bad;
      if (Date.now() > deadline) throw new Error(`the fault did not show within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  stop(): Promise<number | null> {
    return this.#proc.stop(1000);
  }
}

function outcomes(probes: readonly Probe[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of probes) if (p.status !== 201) out[p.status] = (out[p.status] ?? 0) + 1;
  return out;
}

export async function measureRecovery(w: FaultWorld, progress: (line: string) => void): Promise<Recovery> {
  const [first, second] = w.brokerIds;
  if (first === undefined || second === undefined) throw new Error('recovery needs two brokers');
  const prober = new Prober(w.inet, w.gatewayUrl, w.gatewayCa);
  try {
    await prober.ready();
    await prober.firstSuccess(Date.now(), 30000);

    // 1. Both brokers down (the gateway answers 503), then one starts.
    await w.killBroker(first);
    await w.killBroker(second);
    await prober.firstFailure(Date.now(), 30000);
    const brokerStart = Date.now();
    await w.startBroker(first);
    const served = await prober.firstSuccess(brokerStart, 60000);
    const brokerStartToFirstMs = served.done - brokerStart;
    const up = w
      .brokerLog(first)
      .find((l) => l.msg === 'tunnel up' && l.gatewayId === w.gatewayId && typeof l.time === 'string');
    const tunnelUpMs = up === undefined ? undefined : Date.parse(String(up.time)) - brokerStart;
    progress(
      `broker start → first request served: ${brokerStartToFirstMs} ms (its tunnel into ${w.gatewayId} up after ${tunnelUpMs ?? '?'} ms)`,
    );
    await w.startBroker(second);
    await w.waitUntilServing(60000);

    // 2. The gateway's sshd and its sessions killed, then started again.
    const sshdKill = Date.now();
    await w.killSshd(w.gatewayId);
    await prober.firstFailure(sshdKill, 30000);
    await w.startSshd(w.gatewayId);
    const back = await prober.firstSuccess(Date.now(), 60000);
    const sshdRestartMs = back.done - sshdKill;
    progress(`sshd killed and restarted → served again: ${sshdRestartMs} ms`);
    // Both brokers' tunnels back before the next fault.
    await w.waitUntilServing(60000);

    // 3. The broker carrying the gateway's queue SIGKILLed while requests flow.
    const victim = await w.carrier();
    const brokerKill = Date.now();
    await w.killBroker(victim);
    const next = await prober.firstSuccess(brokerKill, 60000);
    await new Promise((r) => setTimeout(r, 500));
    const around = prober.answers().filter((p) => p.sent >= brokerKill && p.sent <= next.sent);
    const brokerDeathMs = next.done - brokerKill;
    progress(`one of two brokers killed → next request served: ${brokerDeathMs} ms`);
    await w.startBroker(victim);
    return {
      brokerStartToFirstMs,
      ...(tunnelUpMs === undefined ? {} : { brokerStartToTunnelUpMs: tunnelUpMs }),
      sshdRestartMs,
      brokerDeathMs,
      brokerDeathFailures: outcomes(around),
    };
  } finally {
    await prober.stop();
  }
}
