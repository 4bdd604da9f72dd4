// Headless Chromium (Debian's, driven by playwright-core) inside a host of the world, usually
// the internet host: trusts the world's public CA through an NSS database in its own HOME, as a
// user's browser trusts a public CA, and reaches the site's name at the address given (as DNS
// would answer). Runs one visit of the guestbook and prints what it saw as one JSON line.
//
// argv[2]: { home, userDataDir, ca, name, address, sign?: { name, message }, screenshot? }
// Cookies persist in userDataDir, so a second run (another gateway's address) is the same user.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

interface Visit {
  readonly home: string;
  readonly userDataDir: string;
  readonly ca: string;
  readonly name: string;
  readonly address: string;
  readonly sign?: { readonly name: string; readonly message: string };
  readonly screenshot?: string;
}

const visit = JSON.parse(process.argv[2] ?? '{}') as Visit;
const nssdb = join(visit.home, '.pki', 'nssdb');
if (!existsSync(join(nssdb, 'cert9.db'))) {
  mkdirSync(nssdb, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${nssdb}`, '-N', '--empty-password']);
  execFileSync('certutil', [
    '-d',
    `sql:${nssdb}`,
    '-A',
    '-t',
    'C,,',
    '-n',
    'nonstop world public CA',
    '-i',
    visit.ca,
  ]);
}

const context = await chromium.launchPersistentContext(visit.userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  env: { ...process.env, HOME: visit.home },
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--host-resolver-rules=MAP ${visit.name} ${visit.address}`,
  ],
});
try {
  const page = await context.newPage();
  const assets: Record<string, number> = {};
  page.on('response', (r) => {
    const url = new URL(r.url());
    if (url.pathname.startsWith('/assets/')) assets[url.pathname] = r.status();
  });
  const first = await page.goto(`https://${visit.name}/`);
  let afterSign: string | undefined;
  if (visit.sign !== undefined) {
    await page.fill('input[name=name]', visit.sign.name);
    await page.fill('textarea[name=message]', visit.sign.message);
    await Promise.all([page.waitForURL(`https://${visit.name}/`), page.click('button[type=submit]')]);
    afterSign = page.url();
  }
  const welcome = page.locator('.welcome');
  const seen = {
    title: await page.title(),
    welcome: (await welcome.count()) > 0 ? await welcome.textContent() : null,
    entries: await page.locator('.entries li p').allTextContents(),
    // The static stylesheet applied: the heading's border is the one guestbook.css sets (an
    // expression string: this file is compiled without the DOM's types).
    headingBorder: String(
      await page.evaluate('getComputedStyle(document.querySelector("h1")).borderBottomStyle'),
    ),
  };
  if (visit.screenshot !== undefined) await page.screenshot({ path: visit.screenshot, fullPage: true });
  const cookies = (await context.cookies()).map((c) => ({
    name: c.name,
    httpOnly: c.httpOnly,
    secure: c.secure,
    sameSite: c.sameSite,
  }));
  console.log(JSON.stringify({ status: first?.status() ?? 0, afterSign, assets, cookies, ...seen }));
} finally {
  await context.close();
}
