// The host-config builders (config/render/) give the core and each knock guard a metrics listener
// on loopback by default, as the gateway's: what Ansible deploys (core_metrics_port,
// gateway_guard_metrics_port, broker_guard_metrics_port pass these defaults) and the world runs.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderArtefact } from '../../cli/render.js';
import { coreDocument, type CoreInput } from '../../config/render/core.js';
import { guardDocument, type GuardInput } from '../../config/render/guard.js';

const core = {
  configDir: '/etc/nonstop',
  privateAddress: '10.0.0.30',
  database: { postgres: { user: 'nonstop-core', database: 'nonstop', port: 5432 } },
} satisfies CoreInput;
const guard = {
  role: 'gateway',
  id: 'gw1',
  clients: [{ name: 'broker1', secret: 'A'.repeat(43) }],
} satisfies GuardInput;

describe('metrics listeners in the rendered configs', () => {
  test('core: 127.0.0.1:9465 unless told otherwise; null: none', () => {
    assert.deepEqual(coreDocument(core).metrics, { host: '127.0.0.1', port: 9465 });
    assert.equal(coreDocument({ ...core, metricsPort: 9999 }).metrics?.port, 9999);
    assert.equal(coreDocument({ ...core, metricsPort: null }).metrics, undefined);
  });

  test('guard, on a gateway and on a broker: 127.0.0.1:9466 unless told otherwise; null: none', () => {
    assert.deepEqual(guardDocument(guard).metrics, { host: '127.0.0.1', port: 9466 });
    const broker = {
      role: 'broker',
      id: 'broker1',
      static: [{ name: 'ops', sequence: ['7000', '8000'] }],
    } as const;
    assert.equal(guardDocument({ ...broker, metricsPort: 9500 }).metrics?.port, 9500);
    assert.equal(guardDocument({ ...guard, metricsPort: null }).metrics, undefined);
  });

  test('nonstop render takes metricsPort as Ansible passes it, and refuses a port out of range', () => {
    const rendered = JSON.parse(renderArtefact('core', 'in.json', { ...core, metricsPort: 9465 })) as {
      metrics?: unknown;
    };
    assert.deepEqual(rendered.metrics, { host: '127.0.0.1', port: 9465 });
    const none = JSON.parse(renderArtefact('guard', 'in.json', { ...guard, metricsPort: null })) as {
      metrics?: unknown;
    };
    assert.equal(none.metrics, undefined);
    assert.throws(() => renderArtefact('core', 'in.json', { ...core, metricsPort: 0 }), /metricsPort/);
    assert.throws(() => renderArtefact('guard', 'in.json', { ...guard, metricsPort: 70000 }), /metricsPort/);
  });
});
