// The gateway's metrics: bounded labels, one count per answer, the metrics listener's config.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { describe, test } from 'node:test';
import { isLoopbackHost } from '../../config/gateway-checks.js';
import { validateConfig } from '../../config/load.js';
import { gatewayDocument } from '../../config/render/gateway.js';
import { routesSchema } from '../../config/schemas/routes.js';
import { errors } from '../../lib/errors.js';
import { FIXED_ROUTES, GatewayMetrics, queueFailureReason, refusalLabel } from '../../gateway/metrics.js';
import { hostAllowed } from '../../gateway/metrics-server.js';
import { sampleValue } from '../helpers/prometheus.js';

/** Just what `track` reads: 'close', and whether the answer was complete then. */
class FakeResponse extends EventEmitter {
  statusCode = 200;
  writableEnded = false;
}
const fakeResponse = () => new FakeResponse() as FakeResponse & ServerResponse;

const REQUESTS = 'nonstop_gateway_requests_total';

function metrics(pending = () => 0) {
  return new GatewayMetrics(['notes.list', 'notes.get'], { pending }, { processMetrics: false });
}

class ReplyError extends Error {
  override name = 'ReplyError';
}

describe('gateway metrics labels', () => {
  test('fixed route labels can never be a route name', () => {
    const name = new RegExp(routesSchema.properties.routes.items.properties.name.pattern);
    for (const label of Object.values(FIXED_ROUTES)) assert.doesNotMatch(label, name, label);
    assert.match('notes.list', name);
  });

  test('refusal codes lose their prefix', () => {
    assert.equal(refusalLabel(errors.RATE_LIMITED.code), 'rate_limited');
    assert.equal(refusalLabel(errors.BODY_TOO_LARGE.code), 'body_too_large');
    assert.equal(refusalLabel('SOMETHING_ELSE'), 'something_else');
  });

  test('queue failures by reason: nothing connected, OOM, NOPERM, another error reply, a connection', () => {
    const rejected = (cause: Error) =>
      errors.QUEUE_UNAVAILABLE('Queue rejected the request', undefined, { cause });
    assert.equal(queueFailureReason(errors.QUEUE_UNAVAILABLE('Queue is not connected')), 'not_connected');
    assert.equal(
      queueFailureReason(rejected(new ReplyError("OOM command not allowed when used memory > 'maxmemory'."))),
      'oom',
    );
    assert.equal(queueFailureReason(rejected(new ReplyError('NOPERM User has no permissions'))), 'noperm');
    assert.equal(queueFailureReason(rejected(new ReplyError('ERR unknown command'))), 'redis_error');
    assert.equal(queueFailureReason(rejected(new Error('Connection is closed.'))), 'connection');
  });

  test('a request counts once, under the route it ended with, with its status', async () => {
    const m = metrics();
    const res = fakeResponse();
    const track = m.track(res, m.seriesOf(FIXED_ROUTES.refused));
    track.route = m.seriesOf('notes.get');
    res.statusCode = 201;
    res.writableEnded = true;
    res.emit('close');
    const aborted = fakeResponse();
    m.track(aborted, m.seriesOf('notes.list'));
    aborted.emit('close');
    const text = await m.text();
    assert.equal(sampleValue(text, REQUESTS, { route: 'notes.get', status: '201' }), 1);
    assert.equal(sampleValue(text, REQUESTS, { route: '_refused' }), undefined);
    assert.equal(sampleValue(text, REQUESTS, { route: 'notes.list', status: 'aborted' }), 1);
    assert.equal(
      sampleValue(text, 'nonstop_gateway_request_duration_seconds_count', { route: 'notes.get' }),
      1,
    );
    // Every known route has its latency series from the start; a route without traffic shows 0.
    assert.equal(
      sampleValue(text, 'nonstop_gateway_request_duration_seconds_count', { route: '_static' }),
      0,
    );
  });

  test('refusals, queue failures and the pending gauge, read at scrape time', async () => {
    let pending = 3;
    const m = metrics(() => pending);
    const track = m.track(fakeResponse(), m.seriesOf(FIXED_ROUTES.refused));
    track.refused(errors.RATE_LIMITED.code);
    track.refused(errors.RATE_LIMITED.code);
    m.queueFailed(errors.QUEUE_UNAVAILABLE('Queue is not connected'));
    let text = await m.text();
    assert.equal(sampleValue(text, 'nonstop_gateway_refusals_total', { code: 'rate_limited' }), 2);
    assert.equal(
      sampleValue(text, 'nonstop_gateway_queue_add_failures_total', { reason: 'not_connected' }),
      1,
    );
    assert.equal(sampleValue(text, 'nonstop_gateway_queue_add_failures_total', { reason: 'oom' }), 0);
    assert.equal(sampleValue(text, 'nonstop_gateway_pending_replies'), 3);
    pending = 0;
    text = await m.text();
    assert.equal(sampleValue(text, 'nonstop_gateway_pending_replies'), 0);
    // Its own registry: another gateway's metrics in the same process are apart.
    assert.equal(sampleValue(await metrics().text(), 'nonstop_gateway_refusals_total'), undefined);
  });
});

describe('gateway metrics listener config', () => {
  const base = { kind: 'gateway', id: 'gw1', routes: 'routes.json' };

  test('loopback hosts', () => {
    for (const host of [
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '0:0:0:0:0:0:0:1',
      'localhost',
      '::ffff:127.0.0.1',
    ]) {
      assert.ok(isLoopbackHost(host), host);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '198.18.0.11', 'gw1.example', '128.0.0.1']) {
      assert.ok(!isLoopbackHost(host), host);
    }
  });

  test('off unless configured; on 127.0.0.1 by default', () => {
    assert.equal(validateConfig('gateway', 'g.json', base).metrics, undefined);
    assert.deepEqual(validateConfig('gateway', 'g.json', { ...base, metrics: { port: 9464 } }).metrics, {
      host: '127.0.0.1',
      port: 9464,
      allowNonLoopback: false,
    });
  });

  test('a host other than loopback is refused unless allowNonLoopback', () => {
    assert.throws(
      () => validateConfig('gateway', 'g.json', { ...base, metrics: { host: '0.0.0.0', port: 9464 } }),
      (err: Error & { code?: string }) =>
        err.code === errors.CONFIG_INVALID.code &&
        /^g\.json: field "metrics\.host" must be a loopback address .*"metrics\.allowNonLoopback": true/.test(
          err.message,
        ),
    );
    const allowed = validateConfig('gateway', 'g.json', {
      ...base,
      metrics: { host: '10.8.0.1', port: 9464, allowNonLoopback: true },
    });
    assert.equal(allowed.metrics?.host, '10.8.0.1');
  });

  test('deployed gateways have it on 127.0.0.1:9464 unless told otherwise; null: none', () => {
    const facts = { id: 'gw1', configDir: '/etc/nonstop', tunnels: [{ broker: 'b1', port: 6380 }] };
    assert.deepEqual(gatewayDocument(facts).metrics, { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(gatewayDocument({ ...facts, metricsPort: 9999 }).metrics, {
      host: '127.0.0.1',
      port: 9999,
    });
    assert.equal('metrics' in gatewayDocument({ ...facts, metricsPort: null }), false);
    // A tunnel's loopback port is not for the metrics.
    assert.throws(
      () => gatewayDocument({ ...facts, metricsPort: 6380 }),
      /field "metrics\.port" must not be 6380/,
    );
  });

  test('the listener answers requests naming itself only (no DNS rebinding)', () => {
    const loopback = { host: '127.0.0.1', allowNonLoopback: false };
    for (const h of ['127.0.0.1:9464', 'localhost:9464', '[::1]:9464', '127.0.0.1'])
      assert.ok(hostAllowed(h, loopback), h);
    for (const h of [
      undefined,
      '',
      'evil.example',
      'evil.example:9464',
      '10.8.0.1:9464',
      '127.0.0.1.evil.example',
    ]) {
      assert.ok(!hostAllowed(h, loopback), String(h));
    }
    const admin = { host: '10.8.0.1', allowNonLoopback: true };
    assert.ok(hostAllowed('10.8.0.1:9464', admin));
    assert.ok(hostAllowed('127.0.0.1:9464', admin));
    assert.ok(!hostAllowed('10.8.0.10:9464', admin));
    assert.ok(!hostAllowed('evil.example', admin));
    assert.ok(hostAllowed('[fd00::1]:9464', { host: 'fd00::1', allowNonLoopback: true }));
  });
});
