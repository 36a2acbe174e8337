// The dashboard of the `poplar` daemon over HTTP: who gets in (an admin's name and token, nothing
// else), the page's headers, the kick and its CSRF defence, and where the page is served: plain
// HTTP on loopback, HTTPS only (the POP3 certificate) or not at all elsewhere.
import assert from 'node:assert/strict';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  DASHBOARD_ADMIN,
  dashboardDaemon,
  dashboardUrl,
  fetchText,
  stateUntil,
} from '../helpers/dashboard.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';
import { usePki } from '../tls/certs.js';

const pki = await usePki();
const ADMIN = DASHBOARD_ADMIN;
const TOKEN = ADMIN[1];

async function withCert(t: TestContext): Promise<string[]> {
  const dir = await tempDir(t);
  await copyFile(pki.localhost.certPath, join(dir, 'cert.pem'));
  await copyFile(pki.localhost.keyPath, join(dir, 'key.pem'));
  return ['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')];
}

test('on loopback: only an admin name with its token opens the page; /metrics and /healthz stay open', async (t) => {
  const d = await dashboardDaemon(t, '127.0.0.1:0');
  const url = await dashboardUrl(d);
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const refused = async (path: string, auth?: readonly [string, string]): Promise<void> => {
    const answer = await fetchText(new URL(path, url).href, auth === undefined ? {} : { auth });
    assert.equal(answer.status, 401, `${path} with ${JSON.stringify(auth)}`);
    assert.match(String(answer.headers['www-authenticate']), /^Basic realm="Poplar dashboard"/);
    assert.doesNotMatch(answer.body, /<html|uPlot|csrf/i);
  };
  // No credentials is not a guess; three wrong ones are what an address may send before it waits.
  for (const path of ['/', '/api/state', '/api/events', '/dashboard.js', '/uplot.js']) await refused(path);
  await refused('/', ['ops', 'wrong-token-16ch']);
  await refused('/api/state', ['root', TOKEN]);
  // The public demo token opens nothing outside demo mode, whoever holds it.
  await refused('/dashboard.js', ['root', '123456789abcdef1']);
  const page = await fetchText(url, { auth: ADMIN });
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  const csp = String(page.headers['content-security-policy']);
  for (const directive of ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"])
    assert.ok(csp.includes(directive), csp);
  assert.equal(page.headers['x-content-type-options'], 'nosniff');
  assert.doesNotMatch(page.body, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline script');
  assert.doesNotMatch(page.body, /\sstyle=|https?:\/\//i, 'no inline style, nothing from elsewhere');
  const port = new URL(url).port;
  assert.equal((await fetchText(`http://127.0.0.1:${port}/metrics`)).status, 200);
  assert.equal((await fetchText(`http://127.0.0.1:${port}/healthz`)).status, 200);
  // Every script and style sheet the page names is served (uPlot from the package).
  for (const [, src] of page.body.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)) {
    const asset = await fetchText(new URL(src ?? '', url).href, { auth: ADMIN });
    assert.equal(asset.status, 200, String(src));
  }
});

test('the state shows a POP3 session and its lock; a kick ends it, but only with the page CSRF token', async (t) => {
  const d = await dashboardDaemon(t, '127.0.0.1:0');
  const url = await dashboardUrl(d);
  const client = await Pop3TestClient.connect(d.port);
  t.after(() => {
    client.close();
  });
  await client.login('alice', 'pw');
  const state = await stateUntil(url, { auth: ADMIN }, (s) => s.sessions.some((r) => r.user === 'alice'));
  assert.equal(state.admin, 'ops');
  const row = state.sessions.find((r) => r.user === 'alice');
  assert.ok(row !== undefined);
  assert.equal(row.state, 'TRANSACTION');
  assert.equal(row.where, 'this process');
  assert.deepEqual(
    state.locks.map((l) => l.user),
    ['alice'],
  );
  assert.equal(state.facts.workers, 1);
  assert.equal(state.facts.certificate, null);

  const kick = `${url}api/kick`;
  const body = JSON.stringify({ user: 'alice' });
  const json = { 'content-type': 'application/json' };
  const refused = [
    { headers: json },
    { headers: { ...json, 'x-poplar-csrf': 'forged' } },
    { headers: { ...json, 'x-poplar-csrf': state.csrf, origin: 'http://evil.example' } },
    { headers: { ...json, 'x-poplar-csrf': state.csrf, 'sec-fetch-site': 'cross-site' } },
    { headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-poplar-csrf': state.csrf } },
  ];
  for (const { headers } of refused) {
    const answer = await fetchText(kick, { auth: ADMIN, method: 'POST', headers, body });
    assert.equal(answer.status, 403, JSON.stringify(headers));
  }
  assert.equal(
    (await fetchText(kick, { auth: ADMIN, headers: { ...json, 'x-poplar-csrf': state.csrf } })).status,
    405,
  );
  assert.equal(
    (await fetchText(kick, { method: 'POST', headers: { ...json, 'x-poplar-csrf': state.csrf }, body }))
      .status,
    401,
  );
  assert.equal((await client.command('NOOP')).slice(0, 3), '+OK', 'refused kicks ended nothing');

  const origin = `http://127.0.0.1:${new URL(url).port}`;
  const answer = await fetchText(kick, {
    auth: ADMIN,
    method: 'POST',
    headers: { ...json, 'x-poplar-csrf': state.csrf, origin, 'sec-fetch-site': 'same-origin' },
    body,
  });
  assert.equal(answer.status, 200, answer.body);
  assert.deepEqual(JSON.parse(answer.body), { ended: 1 });
  assert.match(await client.closed(), /^-ERR .*administrator/);
  await d.waitForLog((e) => e.msg === 'sessions ended from the dashboard' && e['admin'] === 'ops');
  await stateUntil(url, { auth: ADMIN }, (s) => s.sessions.length === 0 && s.locks.length === 0);
});

test('off loopback without a certificate: no dashboard, and a line that says why; /metrics as before', async (t) => {
  const d = await dashboardDaemon(t, '0.0.0.0:0');
  const line = await d.waitForLog((e) => e.msg.startsWith('dashboard off'));
  assert.match(line.msg, /not on loopback.*no certificate/);
  const { port } = await d.waitForLog((e) => e.msg === 'metrics listening');
  const answer = await fetchText(`http://127.0.0.1:${String(port)}/`, { auth: ADMIN });
  assert.equal(answer.status, 404);
  assert.equal((await fetchText(`http://127.0.0.1:${String(port)}/metrics`)).status, 200);
  assert.ok(!d.logs.some((e) => e.msg.startsWith('dashboard on')));
});

test('off loopback with the POP3 certificate: the page over HTTPS only, /metrics over both', async (t) => {
  const d = await dashboardDaemon(t, '0.0.0.0:0', await withCert(t));
  const url = await dashboardUrl(d);
  assert.match(url, /^https:\/\/0\.0\.0\.0:\d+\/$/);
  const port = new URL(url).port;
  const https = `https://127.0.0.1:${port}/`;
  const page = await fetchText(https, { auth: ADMIN, ca: pki.ca });
  assert.equal(page.status, 200);
  assert.equal((await fetchText(https, { ca: pki.ca })).status, 401);
  const state = await stateUntil(https, { auth: ADMIN, ca: pki.ca }, () => true);
  assert.match(state.facts.certificate?.subject ?? '', /CN=localhost/);
  assert.ok((state.facts.certificate?.notAfter ?? 0) > Date.now());
  assert.equal((await fetchText(`${https}metrics`, { ca: pki.ca })).status, 200);

  // Plain HTTP on the same port: the page moves to HTTPS, the API is refused, even with the token.
  const plain = `http://127.0.0.1:${port}/`;
  const moved = await fetchText(plain, { auth: ADMIN });
  assert.equal(moved.status, 308);
  assert.equal(moved.headers.location, `https://127.0.0.1:${port}/`);
  assert.equal((await fetchText(`${plain}api/state`, { auth: ADMIN })).status, 403);
  assert.equal((await fetchText(`${plain}metrics`)).status, 200);
  assert.equal((await fetchText(`${plain}healthz`)).status, 200);
});

test('wrong credentials are throttled: past a few, even the right ones wait their turn', async (t) => {
  const d = await dashboardDaemon(t, '127.0.0.1:0');
  const url = await dashboardUrl(d);
  let answer;
  let guesses = 0;
  do {
    answer = await fetchText(url, { auth: ['ops', `guess-${String(guesses).padStart(10, '0')}`] });
    assert.equal(answer.status, 401);
    guesses += 1;
  } while (answer.headers['retry-after'] === undefined && guesses < 20);
  assert.ok(guesses > 3 && guesses < 20, `locked out after ${String(guesses)} guesses`);
  const held = await fetchText(url, { auth: ADMIN });
  assert.equal(held.status, 401, 'the right token, unchecked while the address is locked out');
  assert.ok(Number(held.headers['retry-after']) >= 1);
  // Once the lock-out is over, the right token opens the page again.
  const deadline = Date.now() + 15_000;
  while ((await fetchText(url, { auth: ADMIN })).status !== 200)
    assert.ok(Date.now() < deadline, 'the right token never got in');
  await d.waitForLog((e) => e.msg === 'dashboard request with wrong credentials');
});
