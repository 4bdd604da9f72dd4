// The Grafana dashboard (config/grafana/nonstop.json) reads only metrics the daemons expose, and
// shows every one of theirs but the process defaults: a renamed or new metric fails here. Each
// daemon's registry is built as the daemon builds it (the broker's from a snapshot with a cell
// and one process's work metrics), so the families compared are the ones a scrape returns.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { BrokerStatusMetrics, BrokerWorkMetrics } from '../../broker/metrics.js';
import type { StatusSnapshot } from '../../broker/status-server.js';
import { CoreMetrics } from '../../core/metrics.js';
import { GatewayMetrics } from '../../gateway/metrics.js';
import { GuardMetrics } from '../../knock/metrics.js';
import { ZERO_GUARD_STATS } from '../helpers/guard-stats.js';

interface Panel {
  readonly id: number;
  readonly type: string;
  readonly gridPos: { x: number; y: number; w: number; h: number };
  readonly targets?: readonly { expr: string }[];
}

const dashboard = JSON.parse(readFileSync('config/grafana/nonstop.json', 'utf8')) as {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; query?: string }[] };
};
const exprs = [
  ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
  ...dashboard.templating.list.flatMap((v) => (v.query === undefined ? [] : [v.query])),
];
const used = new Set(exprs.flatMap((e) => e.match(/\bnonstop_[a-z0-9_]+/g) ?? []));

/** The families of a text exposition (histograms as their _bucket series). */
function families(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, n, t]) =>
    t === 'histogram' ? `${n}_bucket` : n!,
  );
}

/** Every daemon's families; `processMetrics`: with the process defaults (nodejs_*, process_*). */
async function exposed(processMetrics: boolean): Promise<string[]> {
  const options = { processMetrics };
  const gateway = new GatewayMetrics(['notes.list'], { pending: () => 0 }, options);
  const work = new BrokerWorkMetrics(['gw1']);
  const snapshot: StatusSnapshot = {
    tunnels: [],
    jobs: {},
    queues: {},
    cells: [{ gatewayId: 'gw1', pid: 1, state: 'running', since: '', restarts: 0, lastExit: null }],
    acme: {},
    work: [await work.json()],
  };
  const core = new CoreMetrics(['notes.list'], options);
  const guard = new GuardMetrics(() => ZERO_GUARD_STATS, { maxTrackedSources: 16 }, options);
  return [
    ...families(await gateway.registry.metrics()),
    ...families(await new BrokerStatusMetrics(options).text(snapshot)),
    ...families(await core.registry.metrics()),
    ...families(await guard.registry.metrics()),
  ];
}

test('every metric the dashboard reads is one a gateway, broker, core or guard exposes', async () => {
  const all = new Set(await exposed(true));
  assert.deepEqual(
    [...used].filter((m) => !all.has(m)),
    [],
  );
});

test("every daemon's metric has a panel (the process's own aside)", async () => {
  const own = await exposed(false);
  for (const tier of ['gateway', 'broker', 'core', 'guard'])
    assert.ok(
      own.some((f) => f.startsWith(`nonstop_${tier}_`)),
      `the ${tier}'s metrics are among those compared`,
    );
  assert.deepEqual(
    own.filter((m) => !used.has(m)),
    [],
  );
});

test('each tier has its instance variable, read from one of its own metrics', () => {
  const vars = new Map(dashboard.templating.list.map((v) => [v.name, v.query ?? '']));
  for (const [name, prefix] of [
    ['gateway', 'nonstop_gateway_'],
    ['broker', 'nonstop_broker_'],
    ['core', 'nonstop_core_'],
    ['guard', 'nonstop_guard_'],
  ] as const)
    assert.match(vars.get(name) ?? '', new RegExp(`^label_values\\(${prefix}\\w+, instance\\)$`), name);
});

test('panels have unique ids, fit the 24-column grid and do not overlap', () => {
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const p of dashboard.panels) assert.ok(p.gridPos.x + p.gridPos.w <= 24, `panel ${p.id}`);
  const overlap = (a: Panel['gridPos'], b: Panel['gridPos']) =>
    a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
  for (const [i, a] of dashboard.panels.entries())
    for (const b of dashboard.panels.slice(i + 1))
      assert.ok(!overlap(a.gridPos, b.gridPos), `panels ${a.id} and ${b.id} overlap`);
  assert.equal(dashboard.uid, 'nonstop-overview');
});
