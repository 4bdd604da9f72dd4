// The Grafana dashboard (config/grafana/nonstop.json) reads only metrics the daemons expose, and
// shows every one of theirs but the process defaults: a renamed or new metric fails here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { metricsText, type StatusSnapshot } from '../../broker/status-server.js';
import { GatewayMetrics, METRIC_PREFIX } from '../../gateway/metrics.js';

interface Panel {
  readonly id: number;
  readonly type: string;
  readonly gridPos: { x: number; y: number; w: number; h: number };
  readonly targets?: readonly { expr: string }[];
}

const dashboard = JSON.parse(readFileSync('config/grafana/nonstop.json', 'utf8')) as {
  uid: string;
  panels: Panel[];
};
const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
const used = new Set(exprs.flatMap((e) => e.match(/\bnonstop_[a-z_]+/g) ?? []));

/** Every family the gateway's registry has (histograms as their _bucket series), bar the process's. */
async function gatewayFamilies(): Promise<Set<string>> {
  const metrics = new GatewayMetrics(['notes.list'], { pending: () => 0 }, { processMetrics: false });
  const text = await metrics.registry.metrics();
  return new Set(
    [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, n, t]) => (t === 'histogram' ? `${n}_bucket` : n!)),
  );
}

function brokerFamilies(): Set<string> {
  const snapshot: StatusSnapshot = {
    tunnels: [],
    jobs: {},
    queues: {},
    cells: [{ gatewayId: 'gw1', pid: 1, state: 'running', since: '', restarts: 0, lastExit: null }],
    acme: {},
  };
  return new Set([...metricsText(snapshot).matchAll(/^# TYPE (\S+) \S+$/gm)].map(([, n]) => n!));
}

test('every metric the dashboard reads is one a gateway or a broker exposes', async () => {
  const exposed = new Set([...(await gatewayFamilies()), ...brokerFamilies()]);
  assert.deepEqual(
    [...used].filter((m) => !exposed.has(m)),
    [],
  );
});

test("every gateway and broker metric has a panel (the process's own aside)", async () => {
  const families = [...(await gatewayFamilies()), ...brokerFamilies()];
  assert.ok(families.some((f) => f.startsWith(METRIC_PREFIX)));
  assert.deepEqual(
    families.filter((m) => !used.has(m)),
    [],
  );
});

test('panels have unique ids and fit the 24-column grid', () => {
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const p of dashboard.panels) assert.ok(p.gridPos.x + p.gridPos.w <= 24, `panel ${p.id}`);
  assert.equal(dashboard.uid, 'nonstop-overview');
});
