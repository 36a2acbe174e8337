// The daemon behind a real HAProxy (Debian's 2.6) that sends a PROXY header (send-proxy-v2 or
// send-proxy) to it, with health checks: curl, connecting to HAProxy from 127.0.0.5, logs in and
// retrieves, and the daemon's lines name 127.0.0.5, not the balancer; the monitor's sessions list
// shows the client; the health checks leave no warning or error in the log.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { MonitorClient } from '../../src/monitor/client.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { startHaproxy, type HaproxyEngine } from '../helpers/engines/haproxy.js';
import { RawClient } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp-dir.js';
import { requireBinary } from '../interop/require-binary.js';
import { clientEnv, describeRun, runClient } from '../interop/run-client.js';

const DEMO_TOKEN = '123456789abcdef1';
const WARN = 40;
const DEMO_WARNINGS = /^(demo mode: |the monitor accepts the default admin token)/;
const bounded = { timeout: 90_000 };

/** The daemon (two workers, trusting HAProxy's 127.0.0.1 only) behind HAProxy with health checks. */
async function behindHaproxy(
  t: TestContext,
  proxy: 'v1' | 'v2',
): Promise<{ daemon: RunningDaemon; haproxy: HaproxyEngine; cwd: string }> {
  const cwd = await tempDir(t);
  const daemon = await startDaemon(t, {
    cwd,
    args: ['-p', '0', '--listen', '127.0.0.1', '--workers', '2', '--proxy-protocol-from', '127.0.0.1/32'],
  });
  const haproxy = await startHaproxy(t, {
    servers: [{ name: 'pop1', host: '127.0.0.1', port: daemon.port }],
    proxy,
    checkIntervalMs: 100,
    // A check that waits for the greeting: the node is up when it serves POP3.
    checkExpect: '+OK',
  });
  return { daemon, haproxy, cwd };
}

/** Waits until the daemon has served `count` of HAProxy's health checks (connections from itself). */
async function checksServed(daemon: RunningDaemon, count: number): Promise<void> {
  for (let since = 0, seen = 0; seen < count; seen++) {
    const entry = await daemon.waitForLog(
      (e) => e.msg === 'connection closed' && e['remote'] === '127.0.0.1',
      {
        since,
        timeoutMs: 20_000,
      },
    );
    since = daemon.logs.indexOf(entry) + 1;
  }
}

for (const proxy of ['v2', 'v1'] as const) {
  const option = proxy === 'v2' ? 'send-proxy-v2' : 'send-proxy';
  test(
    `behind HAProxy with ${option}: curl from 127.0.0.5 retrieves, and the logs name 127.0.0.5`,
    bounded,
    async (t) => {
      const curl = await requireBinary(t, 'curl');
      if (curl === undefined) return;
      const { daemon, haproxy, cwd } = await behindHaproxy(t, proxy);
      assert.match(haproxy.config, new RegExp(`server pop1 127\\.0\\.0\\.1:${daemon.port} ${option} check`));

      const result = await runClient(
        curl,
        [
          '-q',
          '--silent',
          '--show-error',
          '--verbose',
          '--max-time',
          '20',
          '--noproxy',
          '*',
          '--interface',
          '127.0.0.5',
          `pop3://foo:bar@127.0.0.1:${haproxy.port}/1`,
        ],
        { env: clientEnv(cwd) },
      );
      assert.equal(result.code, 0, describeRun('curl', result));
      assert.match(result.stdout.toString('latin1'), /Subject: Welcome to Poplar/);

      const opened = await daemon.waitForLog(
        (e) => e.msg === 'connection opened' && e['remote'] === '127.0.0.5',
      );
      const login = await daemon.waitForLog((e) => e.msg === 'login' && e['cid'] === opened['cid']);
      assert.deepEqual([login['user'], login['remote']], ['foo', '127.0.0.5']);
      const closed = await daemon.waitForLog(
        (e) => e.msg === 'connection closed' && e['cid'] === opened['cid'],
      );
      assert.equal(closed['reason'], 'quit');
      // HAProxy's own tcplog line for the same client.
      await haproxy.waitForLog((line) => line.startsWith('127.0.0.5:') && line.includes('pop3 nodes/pop1'));

      // A session held open through HAProxy from 127.0.0.6: the monitor (summing both workers) lists it.
      const held = await RawClient.connect(haproxy.port, { localAddress: '127.0.0.6' });
      t.after(() => {
        held.close();
      });
      await held.waitFor('+OK Poplar');
      const monitorPort = (daemon.started['monitor'] as { address: string; port: number }[]).find(
        (a) => a.address === '127.0.0.1',
      )?.port;
      assert.ok(monitorPort !== undefined);
      const monitor = new MonitorClient({ host: '127.0.0.1', port: monitorPort, token: DEMO_TOKEN });
      const snapshot = (await monitor.snapshot()) as { sessions: { remoteAddress: string }[] };
      assert.ok(
        snapshot.sessions.some((s) => s.remoteAddress === '127.0.0.6'),
        JSON.stringify(snapshot.sessions),
      );

      // Health checks (check-send-proxy: v2 LOCAL, or a v1 line with HAProxy's own addresses) are
      // served as the balancer's connections and leave no warning or error.
      await checksServed(daemon, 5);
      // Demo mode's own warnings (its users file, the default admin token) are not the balancer's.
      const problems = daemon.logs.filter((e) => e.level >= WARN && !DEMO_WARNINGS.test(e.msg));
      assert.deepEqual(
        problems.map((e) => e.raw),
        [],
      );
      assert.ok(
        !haproxy.log.some((line) => /is DOWN|no server available/.test(line)),
        haproxy.log.join('\n'),
      );
    },
  );
}
