// The dashboard of one node of a cluster shows every node: the sessions of another node (named
// after it), the nodes alive, and, once that node's session has sent mail, its bytes in the rates
// (the counters summed over the nodes) and its user among the top users.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { InitialState } from '../../src/dashboard/web/state.js';
import type { RunningDaemon } from '../helpers/daemon.js';
import { DASHBOARD_ADMIN, dashboardDaemon, dashboardUrl, stateUntil } from '../helpers/dashboard.js';
import { startRedis } from '../helpers/engines/redis.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';

const LIMIT = { timeout: 120_000 };
const [ADMIN, TOKEN] = DASHBOARD_ADMIN;
/** How long the state may take to show something: the sampler runs every 2 s, a node answers within 1 s. */
const STATE_WAIT_MS = 30_000;

/** A node of the cluster on Redis at `redisUrl`, named `name`, with the dashboard on. */
const node = (t: TestContext, redisUrl: string, name: string): Promise<RunningDaemon> =>
  dashboardDaemon(t, '127.0.0.1:0', ['--cluster', redisUrl, '--node-name', name], {
    body: 'Hello from node B.',
  });

/** The state of the dashboard at `url`, asked again until `predicate` holds. */
const stateWhen = (url: string, predicate: (s: InitialState) => boolean): Promise<InitialState> =>
  stateUntil(url, { auth: [ADMIN, TOKEN] }, predicate, STATE_WAIT_MS);

test(
  "node A's dashboard shows node B's session, both nodes, B's bytes in the rates and B's user among the top",
  LIMIT,
  async (t) => {
    const redis = await startRedis(t);
    const a = await node(t, redis.url, 'node-a');
    const b = await node(t, redis.url, 'node-b');
    const url = await dashboardUrl(a);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);

    const client = await Pop3TestClient.connect(b.port);
    t.after(() => {
      client.close();
    });
    await client.login('bob', 'pw');

    // B's monitor joins the cluster shortly after its start: asked again until it answers.
    const open = await stateWhen(url, (s) => s.sessions.some((r) => r.user === 'bob'));
    assert.equal(open.sessionsTotal, 1);
    const [row] = open.sessions;
    assert.ok(row !== undefined);
    assert.equal(row.where, 'node-b');
    assert.equal(row.state, 'TRANSACTION');
    assert.deepEqual(open.locks, [{ user: 'bob', holder: '127.0.0.1 (node-b)', since: row.since }]);
    assert.deepEqual([...open.facts.nodes].sort(), ['node-a', 'node-b']);
    assert.deepEqual(open.facts.nodesMissing, []);

    const retr = await client.multi('RETR 1');
    assert.match(retr.status, /^\+OK/);
    assert.ok(retr.lines.includes('Hello from node B.'));
    assert.match(await client.command('QUIT'), /^\+OK/);

    // Nobody connected to A: every byte in A's rates was sent by B.
    const after = await stateWhen(
      url,
      (s) =>
        s.sessionsTotal === 0 &&
        s.fine.values.bytesOut.some((v) => v > 0) &&
        s.topUsers.some((u) => u.user === 'bob'),
    );
    assert.ok(
      after.fine.values.retr.some((v) => v > 0),
      JSON.stringify(after.fine),
    );
    assert.deepEqual(
      after.topUsers.map((u) => u.user),
      ['bob'],
    );
    assert.ok(after.topUsers.every((u) => u.bytes > 0));
  },
);
