// The broker's status page: one HTML document, its stylesheet and its script, served on the
// loopback status listener. The script reads /status every two seconds and draws each cell,
// tunnel and queue with the job rates since the last reading. Everything it shows comes from
// gateways' hosts and errors, so it is written with textContent only (no HTML from data), and
// the page's CSP allows nothing but these three files and /status.

export const STATUS_PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nonstop broker status</title>
<link rel="stylesheet" href="/status.css">
<script src="/status.js" defer></script>
</head>
<body>
<header><h1>nonstop broker <span id="broker">…</span></h1><p id="updated" role="status">reading /status…</p></header>
<main>
<section><h2>Gateways</h2>
<table id="gateways"><thead><tr>
<th>gateway</th><th>cell</th><th>tunnel</th><th>since</th><th>reconnects</th><th>channels</th>
<th>waiting</th><th>active</th><th>delayed</th><th>answered/s</th><th>refused/s</th><th>answered</th><th>invalid</th><th>tampered</th><th>expired</th>
</tr></thead><tbody></tbody></table></section>
<section><h2>Recent errors</h2><ul id="errors"></ul></section>
</main>
</body>
</html>
`;

export const STATUS_PAGE_CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1b1f24;background:#f6f8fa}
h1{font-size:1.3rem;margin:0}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
#updated{color:#57606a;margin:.2rem 0}#updated.stale{color:#b35900;font-weight:600}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0002}
th,td{padding:.3rem .6rem;border-bottom:1px solid #d0d7de;text-align:right;white-space:nowrap}
th:nth-child(-n+4),td:nth-child(-n+4){text-align:left}
.ok{color:#116329;font-weight:600}.bad{color:#a40e26;font-weight:600}.warn{color:#8a5300;font-weight:600}
#errors li{font-family:ui-monospace,monospace;font-size:12px}
`;

/** The page's script, as the browser runs it (plain ES2020: no build step, no dependencies). */
export const STATUS_PAGE_JS = `'use strict';
const REFRESH_MS = 2000;
let last = null;
const text = (tag, value, cls) => {
  const el = document.createElement(tag);
  el.textContent = String(value);
  if (cls) el.className = cls;
  return el;
};
const stateClass = (s) => (s === 'up' || s === 'running' ? 'ok' : s === 'starting' || s === 'connecting' || s === 'backing-off' || s === 'restarting' ? 'warn' : 'bad');
const sum = (o, keys) => keys.reduce((n, k) => n + (o && typeof o[k] === 'number' ? o[k] : 0), 0);
function rate(id, keys, doc, at) {
  if (last === null || !last.doc.jobs[id]) return '–';
  const seconds = (at - last.at) / 1000;
  if (seconds <= 0) return '–';
  return ((sum(doc.jobs[id], keys) - sum(last.doc.jobs[id], keys)) / seconds).toFixed(1);
}
function draw(doc, at) {
  document.getElementById('broker').textContent = doc.brokerId;
  const ids = new Set([...Object.keys(doc.jobs), ...doc.tunnels.map((t) => t.gatewayId), ...doc.cells.map((c) => c.gatewayId)]);
  const body = document.querySelector('#gateways tbody');
  const rows = [];
  const errors = [];
  for (const id of [...ids].sort()) {
    const tunnel = doc.tunnels.find((t) => t.gatewayId === id);
    const cell = doc.cells.find((c) => c.gatewayId === id);
    const queue = doc.queues[id] || {};
    const jobs = doc.jobs[id] || {};
    const tr = document.createElement('tr');
    tr.dataset.gateway = id;
    tr.append(
      text('td', id),
      cell ? text('td', cell.state + (cell.restarts ? ' (' + cell.restarts + ' restarts)' : ''), stateClass(cell.state)) : text('td', 'in process'),
      tunnel ? text('td', tunnel.state + (tunnel.paused ? ', paused' : ''), stateClass(tunnel.state)) : text('td', 'direct'),
      text('td', tunnel ? new Date(tunnel.since).toLocaleTimeString() : ''),
      text('td', tunnel ? tunnel.reconnects : ''),
      text('td', tunnel ? tunnel.channels : ''),
      text('td', queue.waiting ?? 0),
      text('td', queue.active ?? 0),
      text('td', queue.delayed ?? 0),
      text('td', rate(id, ['answered'], doc, at)),
      text('td', rate(id, ['invalid', 'tampered', 'expired'], doc, at)),
      text('td', jobs.answered ?? 0),
      text('td', jobs.invalid ?? 0, jobs.invalid ? 'warn' : ''),
      text('td', jobs.tampered ?? 0, jobs.tampered ? 'bad' : ''),
      text('td', jobs.expired ?? 0, jobs.expired ? 'warn' : ''),
    );
    rows.push(tr);
    if (tunnel && tunnel.lastError) errors.push(id + ' tunnel: ' + tunnel.lastError);
    if (cell && cell.lastExit) errors.push(id + ' cell last exited: ' + cell.lastExit + ' (' + new Date(cell.since).toLocaleTimeString() + ')');
  }
  body.replaceChildren(...rows);
  const list = document.getElementById('errors');
  list.replaceChildren(...(errors.length ? errors.map((e) => text('li', e)) : [text('li', 'none')]));
  const updated = document.getElementById('updated');
  updated.textContent = 'updated ' + new Date(at).toLocaleTimeString() + ', every ' + REFRESH_MS / 1000 + ' s';
  updated.className = '';
}
async function refresh() {
  try {
    const res = await fetch('/status', { cache: 'no-store' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    const doc = await res.json();
    const at = Date.now();
    draw(doc, at);
    last = { doc, at };
  } catch (err) {
    const updated = document.getElementById('updated');
    updated.textContent = 'cannot read /status (' + err.message + '); showing the last reading';
    updated.className = 'stale';
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}
refresh();
`;
