// The dashboard in a real browser: Debian's Chromium driven by playwright-core, against the daemon
// and real POP3 sessions. The page must refuse a visitor without an admin's credentials, show the
// sessions by user name, draw its charts, follow sessions as they come and go without a reload,
// end a session with its kick button, break none of its own Content-Security-Policy, and weigh less
// than its budget on first load.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import { openBrowser } from '../helpers/browser.js';
import { DASHBOARD_ADMIN, dashboardDaemon, dashboardUrl } from '../helpers/dashboard.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';

const [username, password] = DASHBOARD_ADMIN;
/** What the page may weigh on first load, every file and the first state together (issue 16). */
const FIRST_LOAD_BUDGET_BYTES = 200 * 1024;

/** A page signed in as the admin, with what it broke of its CSP collected in `violations`. */
async function signedIn(t: TestContext, url: string): Promise<{ page: Page; violations: string[] }> {
  const context = await openBrowser(t, { httpCredentials: { username, password } });
  const page = await context.newPage();
  const violations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
  });
  page.on('pageerror', (error) => violations.push(`page error: ${error.message}`));
  const response = await page.goto(url);
  assert.equal(response?.status(), 200);
  await page.locator('#live.up').waitFor();
  return { page, violations };
}

async function pop3Login(t: TestContext, port: number, user: string): Promise<Pop3TestClient> {
  const client = await Pop3TestClient.connect(port);
  t.after(() => {
    client.close();
  });
  await client.login(user, 'pw');
  return client;
}

const row = (page: Page, user: string) => page.locator(`#sessions tbody tr[data-user="${user}"]`);

/**
 * Opens `url` with these credentials (or none): Chromium either shows the 401 page or, having no
 * credentials to offer, gives the navigation up; the page itself never loads.
 */
async function refusedVisit(
  t: TestContext,
  url: string,
  credentials?: { username: string; password: string },
): Promise<void> {
  const page = await (
    await openBrowser(t, credentials === undefined ? {} : { httpCredentials: credentials })
  ).newPage();
  const statuses: number[] = [];
  page.on('response', (response) => statuses.push(response.status()));
  const outcome = await page.goto(url).then(
    (response) => `status ${String(response?.status())}`,
    (error: unknown) => String(error),
  );
  assert.match(outcome, /status 401|ERR_INVALID_AUTH_CREDENTIALS/, JSON.stringify(credentials));
  assert.ok(!statuses.includes(200), `no answer was 200: ${statuses.join(', ')}`);
  assert.equal(await page.locator('#sessions').count(), 0);
}

test('without the credentials of an admin the browser gets 401 and no page', async (t) => {
  const d = await dashboardDaemon(t, '127.0.0.1:0');
  const url = await dashboardUrl(d);
  await refusedVisit(t, url);
  await refusedVisit(t, url, { username, password: 'not-the-token-16' });
  await refusedVisit(t, url, { username: 'root', password });
  // And the same browser with the right ones gets in.
  await signedIn(t, url);
});

test('the page shows sessions by user name and follows them as they come and go, without a reload', async (t) => {
  const d = await dashboardDaemon(t, '127.0.0.1:0');
  const url = await dashboardUrl(d);
  const alice = await pop3Login(t, d.port, 'alice');
  const { page, violations } = await signedIn(t, url);
  await row(page, 'alice').waitFor();
  assert.match(await row(page, 'alice').innerText(), /alice.*127\.0\.0\.1.*TRANSACTION/s);
  await page.locator('#locks tbody tr', { hasText: 'alice' }).waitFor();
  await page.evaluate('window.__sameDocument = true');

  const bob = await pop3Login(t, d.port, 'bob');
  await row(page, 'bob').waitFor();
  assert.equal(await row(page, 'alice').count(), 1);
  await bob.command('QUIT');
  await row(page, 'bob').waitFor({ state: 'detached' });
  await alice.command('RETR 1');
  await alice.command('QUIT');
  await row(page, 'alice').waitFor({ state: 'detached' });
  await page.locator('#top-users tbody tr', { hasText: 'alice' }).waitFor();
  assert.equal(await page.evaluate('window.__sameDocument'), true, 'no reload');
  assert.deepEqual(violations, []);
});

test('the charts are drawn, for 15 minutes and for 24 hours', async (t) => {
  const d = await dashboardDaemon(t, '127.0.0.1:0');
  const url = await dashboardUrl(d);
  const { page, violations } = await signedIn(t, url);
  const client = await pop3Login(t, d.port, 'alice');
  await client.command('QUIT');
  const charts = ['#chart-connections', '#chart-logins', '#chart-bytes', '#chart-messages'];
  for (const range of ['#range-fine', '#range-coarse', '#range-fine']) {
    await page.locator(range).click();
    assert.equal(await page.locator(range).getAttribute('aria-pressed'), 'true');
    for (const chart of charts) {
      const canvas = page.locator(`${chart} canvas`);
      await canvas.waitFor();
      const box = await canvas.boundingBox();
      assert.ok(box !== null && box.width > 100 && box.height > 50, `${chart} has a size`);
      // Axes and grid are drawn: the canvas is not blank.
      const inked = await canvas.evaluate((element) => {
        const c = element as unknown as {
          width: number;
          height: number;
          getContext(kind: '2d'): { getImageData(...box: number[]): { data: Uint8ClampedArray } };
        };
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) n += 1;
        return n;
      });
      assert.ok(inked > 100, `${chart} (${range}) has ${String(inked)} drawn pixels`);
    }
  }
  assert.deepEqual(violations, []);
});

test('kick ends a real POP3 session, after a confirmation', async (t) => {
  const d = await dashboardDaemon(t, '127.0.0.1:0');
  const url = await dashboardUrl(d);
  const alice = await pop3Login(t, d.port, 'alice');
  const { page, violations } = await signedIn(t, url);
  const kick = row(page, 'alice').locator('button.kick');
  await kick.click();
  await page.locator('button.kick.confirm').waitFor();
  assert.equal((await alice.command('NOOP')).slice(0, 3), '+OK', 'the first click only asks');
  await kick.click();
  assert.match(await alice.closed(), /^-ERR .*administrator/);
  await page.locator('#status', { hasText: /ended 1 session/ }).waitFor();
  await row(page, 'alice').waitFor({ state: 'detached' });
  await d.waitForLog((e) => e.msg === 'sessions ended from the dashboard' && e['admin'] === username);
  assert.deepEqual(violations, []);
});

test(`first load weighs less than ${String(FIRST_LOAD_BUDGET_BYTES / 1024)} KB`, async (t) => {
  const d = await dashboardDaemon(t, '127.0.0.1:0');
  const url = await dashboardUrl(d);
  const context = await openBrowser(t, { httpCredentials: { username, password } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  const bytes = new Map<string, { url: string; size: number }>();
  cdp.on('Network.responseReceived', (e) => bytes.set(e.requestId, { url: e.response.url, size: 0 }));
  cdp.on('Network.dataReceived', (e) => {
    const entry = bytes.get(e.requestId);
    if (entry !== undefined) entry.size += e.encodedDataLength;
  });
  cdp.on('Network.loadingFinished', (e) => {
    const entry = bytes.get(e.requestId);
    if (entry !== undefined) entry.size = Math.max(entry.size, e.encodedDataLength);
  });
  await page.goto(url);
  await page.locator('#live.up').waitFor();
  await page.waitForLoadState('networkidle').catch(() => undefined);
  const total = [...bytes.values()].reduce((sum, e) => sum + e.size, 0);
  const files = [...bytes.values()].map((e) => `${new URL(e.url).pathname} ${String(e.size)}`).join(', ');
  console.log(`dashboard first load: ${String(total)} bytes (${files})`);
  assert.ok(bytes.size >= 6, files);
  assert.ok(total < FIRST_LOAD_BUDGET_BYTES, `${String(total)} bytes: ${files}`);
});
