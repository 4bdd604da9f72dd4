// @ts-check
// A nonstop application to start from: a bookmarks API and an HTML page of them. The core loads
// this module ("application": "./index.js" in core.json) and runs each handler inside the
// request's transaction: its queries and its answer commit together, once per request id.
// Types: `npm install` nonstop next to it, or keep this folder inside a nonstop checkout.

/** @typedef {import('nonstop/application').Application} Application */
/** @typedef {import('nonstop/application').Handler} Handler */

/** @param {string} s */
const escape = (s) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

/** @type {Handler} */
async function add({ tx, body, requestId }) {
  // The broker validated the body against routes.json: title and url are there and bounded.
  const { title, url } = /** @type {{ title: string, url: string }} */ (body);
  const { rows } = await tx.query(
    'INSERT INTO bookmarks (id, title, url) VALUES ($1, $2, $3) RETURNING id, title, url, created_at',
    [requestId, title, url],
  );
  return { status: 201, headers: { location: `/bookmarks/${requestId}` }, body: rows[0] };
}

/** @type {Handler} */
async function list({ tx }) {
  const { rows } = await tx.query(
    'SELECT id, title, url, created_at FROM bookmarks ORDER BY created_at DESC LIMIT 100',
  );
  return { status: 200, body: { bookmarks: rows } };
}

/** @type {Handler} */
async function page({ tx }) {
  const { rows } = await tx.query('SELECT title, url FROM bookmarks ORDER BY created_at DESC LIMIT 100');
  const items = rows
    .map((r) => `<li><a href="${escape(String(r.url))}">${escape(String(r.title))}</a></li>`)
    .join('\n');
  return {
    status: 200,
    headers: { 'cache-control': 'no-cache', 'content-security-policy': "default-src 'self'" },
    content: {
      type: 'text/html; charset=utf-8',
      data: `<!doctype html><title>Bookmarks</title><ul>${items}</ul>`,
    },
  };
}

/** @type {Application} */
const application = {
  name: 'bookmarks',
  migrations: [
    {
      version: 1,
      name: 'bookmarks',
      sql: [
        `CREATE TABLE bookmarks (
           id uuid PRIMARY KEY,
           title text NOT NULL,
           url text NOT NULL,
           created_at timestamptz NOT NULL DEFAULT now()
         )`,
        'CREATE INDEX bookmarks_created_at ON bookmarks (created_at)',
      ],
    },
  ],
  handlers: { 'bookmarks.add': add, 'bookmarks.list': list, 'bookmarks.page': page },
};

export default application;
