// The application template (templates/application) an author starts from: the core loads it as
// it loads any module, its routes and handlers agree, and its handlers run: a bookmark added
// once per request id, listed as JSON, and shown on an HTML page. (The build type-checks it
// against the package's exported types, `nonstop/application`.)
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { parseRoutes } from '../../config/routes.js';
import { Executor } from '../../core/executor.js';
import { checkHandlers, loadApplication } from '../../core/load-application.js';
import { silentLogger } from '../../lib/log.js';
import { readFileSync } from 'node:fs';
import { openTestDatabase } from '../helpers/core.js';
import { makeEnvelope } from '../helpers/envelope.js';

const TEMPLATE = fileURLToPath(new URL('../../../templates/application/', import.meta.url));

test('the template loads, covers its routes, and its handlers run once per request id', async (t) => {
  const app = await loadApplication('./index.js', TEMPLATE);
  const routes = parseRoutes('routes.json', JSON.parse(readFileSync(`${TEMPLATE}routes.json`, 'utf8')));
  checkHandlers(app, routes);
  const db = await openTestDatabase(t, 'pglite', app);
  const executor = new Executor(db, app, silentLogger());

  const add = makeEnvelope({
    route: 'bookmarks.add',
    method: 'POST',
    path: '/bookmarks',
    body: { title: 'nonstop <docs>', url: 'https://example.com/?a=1&b=2' },
  });
  const added = await executor.execute(add);
  assert.equal(added.response.status, 201);
  assert.equal(added.response.headers.location, `/bookmarks/${add.id}`);
  assert.equal((await executor.execute(add)).replayed, true, 'a repeat of the id adds nothing');

  const list = await executor.execute(
    makeEnvelope({ route: 'bookmarks.list', method: 'GET', path: '/bookmarks' }),
  );
  const { bookmarks } = list.response.body as { bookmarks: { id: string; title: string }[] };
  assert.deepEqual(
    bookmarks.map((b) => [b.id, b.title]),
    [[add.id, 'nonstop <docs>']],
  );

  const page = await executor.execute(makeEnvelope({ route: 'bookmarks.page', method: 'GET', path: '/' }));
  assert.equal(page.response.content?.type, 'text/html; charset=utf-8');
  const html = Buffer.from(page.response.content.base64, 'base64').toString('utf8');
  assert.match(html, /<a href="https:\/\/example.com\/\?a=1&amp;b=2">nonstop &lt;docs&gt;<\/a>/);
});
