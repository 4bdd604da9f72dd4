// A real web site behind nonstop, in a real browser: headless Chromium on the internet host
// opens the guestbook (core/app/guestbook, Python, an upstream of the core) by its public name
// through gw1 over HTTPS, trusting the world's public CA; signs it with the form; sees its entry
// after the redirect; loads the stylesheet the gateway serves from its static folder; and, the
// same browser with the name now pointing at gw2, is greeted by its session there. A screenshot
// of each visit stays in test-results/ (named in the diagnostics).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ThreeTier, SITE_NAME } from '../../world/three-tier.js';
import { packageRoot, worldSkipReason } from '../../world/world.js';

const skip = worldSkipReason();
const BROWSER = 'dist/test/world/browser.js';

interface Seen {
  readonly status: number;
  readonly afterSign?: string;
  readonly assets: Record<string, number>;
  readonly cookies: { name: string; httpOnly: boolean; secure: boolean; sameSite: string }[];
  readonly title: string;
  readonly welcome: string | null;
  readonly entries: string[];
  readonly headingBorder: string;
}

describe('a web site behind nonstop, in headless Chromium', { skip }, () => {
  let tt: ThreeTier;
  before(async () => {
    tt = await ThreeTier.start();
  });
  after(() => tt?.close());

  test('sign the guestbook through gw1, be greeted through gw2', { timeout: 240_000 }, async (t) => {
    const dir = join(tt.world.dir, 'browser');
    mkdirSync(dir, { recursive: true });
    const results = join(packageRoot(), 'test-results');
    mkdirSync(results, { recursive: true });
    const visit = async (gateway: string, extra: Record<string, unknown>): Promise<Seen> => {
      const screenshot = join(results, `web-app-${gateway}.png`);
      const r = await tt.inet.runNode(
        BROWSER,
        [
          JSON.stringify({
            home: join(dir, 'home'),
            userDataDir: join(dir, 'profile'),
            ca: tt.publicCaFile,
            name: SITE_NAME,
            address: tt.gateway(gateway).host.ip4,
            screenshot,
            ...extra,
          }),
        ],
        { timeoutMs: 120_000 },
      );
      const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
      assert.ok(line, `browser through ${gateway}: ${r.stderr}`);
      t.diagnostic(`${gateway}: ${line} (screenshot ${screenshot})`);
      return JSON.parse(line) as Seen;
    };

    const message = `hello from Chromium at ${new Date().toISOString()}`;
    const first = await visit('gw1', { sign: { name: 'Grace', message } });
    assert.equal(first.status, 200);
    assert.equal(first.title, 'Guestbook');
    assert.equal(first.afterSign, `https://${SITE_NAME}/`, 'post/redirect/get back to the page');
    assert.ok(first.entries.includes(message), `the entry is on the page: ${JSON.stringify(first.entries)}`);
    assert.equal(first.welcome, 'Welcome back, Grace.');
    assert.equal(first.assets['/assets/guestbook.css'], 200, 'the stylesheet came from the gateway');
    assert.equal(first.headingBorder, 'solid', 'and it applied');
    const session = first.cookies.find((c) => c.name === 'gb_session');
    assert.deepEqual(session && { ...session, name: undefined }, {
      name: undefined,
      httpOnly: true,
      secure: true,
      sameSite: 'Lax',
    });

    const second = await visit('gw2', {});
    assert.equal(second.status, 200);
    assert.equal(second.welcome, 'Welcome back, Grace.', 'the session holds through the other gateway');
    assert.ok(second.entries.includes(message));
  });
});
