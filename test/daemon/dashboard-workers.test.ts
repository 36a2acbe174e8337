// The dashboard of a daemon with --workers 2: each session says which worker process serves it,
// and so does the lock of its maildrop.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DASHBOARD_ADMIN, dashboardDaemon, dashboardUrl, stateUntil } from '../helpers/dashboard.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';

const LIMIT = { timeout: 120_000 };
const [ADMIN, TOKEN] = DASHBOARD_ADMIN;
/** The sampler runs every 2 s: a few of its samples. */
const STATE_WAIT_MS = 20_000;

test("with --workers 2, a session's row and its lock name the worker that serves it", LIMIT, async (t) => {
  const d = await dashboardDaemon(t, '127.0.0.1:0', ['--workers', '2']);
  const url = await dashboardUrl(d);

  const client = await Pop3TestClient.connect(d.port);
  t.after(() => {
    client.close();
  });
  const since = d.logs.length;
  await client.login('alice', 'pw');
  // The worker that served the login logged it, with its pid.
  const pid = (await d.waitForLog((e) => e.msg === 'login' && e['user'] === 'alice', { since }))['pid'];
  assert.equal(typeof pid, 'number');
  assert.notEqual(pid, d.pid);

  const state = await stateUntil(
    url,
    { auth: [ADMIN, TOKEN] },
    (s) => s.sessions.some((r) => r.user === 'alice'),
    STATE_WAIT_MS,
  );
  const where = `worker ${String(pid)}`;
  assert.equal(state.sessionsTotal, 1);
  const [row] = state.sessions;
  assert.ok(row !== undefined);
  assert.equal(row.where, where);
  assert.equal(row.state, 'TRANSACTION');
  assert.deepEqual(state.locks, [{ user: 'alice', holder: `127.0.0.1 (${where})`, since: row.since }]);
  assert.equal(state.facts.workers, 2);
  assert.deepEqual(state.facts.nodes, []);
});
