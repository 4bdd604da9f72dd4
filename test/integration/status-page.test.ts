// The broker's status page in headless Chromium (Debian's, driven by playwright-core): it draws
// each gateway's row from /status, refreshes on its own, and says so when the broker is gone.
// A screenshot goes to test-results/status-page.png.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { startCliBroker } from '../helpers/broker.js';
import { usePki } from '../helpers/pki.js';
import { testRedis } from '../helpers/redis.js';

const CHROMIUM = '/usr/bin/chromium';

describe(
  'broker status page',
  { skip: !existsSync(CHROMIUM) && 'needs Debian chromium (scripts/setup.sh as root)' },
  () => {
    const pki = usePki({ brokers: ['b1'] });

    test('shows every gateway live, and that it lost the broker when it did', async (t) => {
      const redis = testRedis(t);
      const { child, done, base } = await startCliBroker(t, pki(), {
        prefix: redis.prefix,
        gateways: ['gw1', 'gw2'],
      });
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
      });
      t.after(() => browser.close());
      const page = await browser.newPage();
      const violations: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') violations.push(m.text());
      });
      await page.goto(`${base}/`);

      // Both cells come up within the broker's start; the page shows them as it reads /status.
      const cell = (id: string) => page.locator(`tr[data-gateway="${id}"] td:nth-child(2)`);
      await page
        .locator('#gateways tbody td:nth-child(2)', { hasText: /^running$/ })
        .nth(1)
        .waitFor({ timeout: 30_000 });
      assert.equal(await page.locator('#broker').textContent(), 'b1');
      assert.equal(await cell('gw1').textContent(), 'running');
      assert.equal(await cell('gw2').getAttribute('class'), 'ok');
      assert.match((await page.locator('#updated').textContent()) ?? '', /^updated .*, every 2 s$/);
      mkdirSync('test-results', { recursive: true });
      await page.screenshot({ path: 'test-results/status-page.png', fullPage: true });

      child.kill('SIGTERM');
      assert.equal((await done).code, 0);
      await page.waitForSelector('#updated.stale', { timeout: 10_000 });
      assert.match((await page.locator('#updated').textContent()) ?? '', /cannot read \/status/);
      assert.deepEqual(
        violations.filter((v) => !/Failed to load resource|Failed to fetch/.test(v)),
        [],
        'no CSP violation or script error',
      );
    });
  },
);
