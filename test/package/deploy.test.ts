// The files in deploy/: systemd accepts the unit without a warning; its ExecStart, with the paths
// moved into a temporary folder and test ports, starts a daemon that serves; its ExecReload signal
// leaves it serving and its stop (KillMode=mixed: SIGTERM to the main process) ends it with exit 0;
// and every metric the Grafana dashboard queries is in that daemon's /metrics.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { MonitorClient } from '../../src/monitor/client.js';
import { runPoplar, startDaemon } from '../helpers/daemon.js';
import { dialog } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';
import { requireBinary } from '../interop/require-binary.js';
import { usePki } from '../tls/certs.js';
import { projectRoot } from './project.js';

const run = promisify(execFile);
const pki = await usePki();
const TOKEN = 'Xk4vQ9pL2mN7rT1w';

/** The unit's settings (the last value of each key; continuation lines joined). */
async function readUnit(): Promise<Map<string, string>> {
  const text = await readFile(join(projectRoot(), 'deploy', 'poplar.service'), 'utf8');
  const settings = new Map<string, string>();
  for (const line of text.replace(/\\\n/g, ' ').split('\n')) {
    const match = /^(\w+)=(.*)$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) settings.set(match[1], match[2].trim());
  }
  return settings;
}

test('systemd-analyze verify accepts deploy/poplar.service with no warning', async (t) => {
  const analyze = await requireBinary(t, 'systemd-analyze');
  if (analyze === undefined) return;
  const dir = await tempDir(t);
  // verify checks that ExecStart's program exists: point it at the clone's bin.
  const unit = (await readFile(join(projectRoot(), 'deploy', 'poplar.service'), 'utf8')).replace(
    '/usr/local/bin/poplar ',
    `${join(projectRoot(), 'bin', 'poplar.js')} `,
  );
  await writeFile(join(dir, 'poplar.service'), unit);
  const { stdout, stderr } = await run(analyze, ['verify', join(dir, 'poplar.service')]);
  assert.equal(stdout + stderr, '');
});

test(
  "the unit's ExecStart serves, reload keeps it serving, stop exits 0; the dashboard's metrics exist",
  { timeout: 120_000 },
  async (t) => {
    const unit = await readUnit();
    const root = await tempDir(t);
    const etc = join(root, 'etc', 'poplar');
    const mail = join(root, 'var', 'mail', 'poplar');
    await mkdir(join(etc, 'tls'), { recursive: true });
    await mkdir(mail, { recursive: true });
    await writeFile(join(etc, 'users'), 'alice:{PLAIN}pw\n');
    const admin = await runPoplar(t, ['hash-password', '--scheme', 'SSHA256', '--user', 'ops'], {
      input: TOKEN,
    });
    await writeFile(join(etc, 'admins'), admin.stdout);
    await cp(pki.localhost.certPath, join(etc, 'tls', 'fullchain.pem'));
    await cp(pki.localhost.keyPath, join(etc, 'tls', 'privkey.pem'));

    // ExecStart's flags, with its paths under `root` and ports the test may use (later flags win).
    const [program, ...flags] = (unit.get('ExecStart') ?? '').split(/\s+/);
    assert.equal(program, '/usr/local/bin/poplar');
    const args = flags
      .map((a) => a.replace(/^\/etc\/poplar/, etc).replace(/^\/var\/mail\/poplar/, mail))
      .concat(['--listen', '127.0.0.1', '-p', '0', '--tls-port', '0', '--metrics-listen', '127.0.0.1:0']);
    const d = await startDaemon(t, { args });
    const monitorPort = (d.started['monitor'] as { port: number }[])[0]?.port ?? 0;
    const metricsPort = (await d.waitForLog((e) => e.msg === 'metrics listening'))['port'] as number;
    assert.match((await dialog(d.port, ['USER alice', 'PASS pw', 'CAPA', 'STAT', 'QUIT']))[2] ?? '', /^\+OK/);
    const monitor = new MonitorClient({ host: '127.0.0.1', port: monitorPort, token: TOKEN });
    assert.equal(await monitor.counter('historicConnections'), 1n);

    // Every metric name in the dashboard's queries is a series of /metrics.
    const response = await fetch(`http://127.0.0.1:${String(metricsPort)}/metrics`);
    const exposed = new Set(
      (await response.text())
        .split('\n')
        .filter((line) => line !== '' && !line.startsWith('#'))
        .map((line) => /^[a-zA-Z_:][\w:]*/.exec(line)?.[0]),
    );
    const dashboard = JSON.parse(
      await readFile(join(projectRoot(), 'deploy', 'grafana', 'poplar-dashboard.json'), 'utf8'),
    ) as {
      panels: { title: string; targets?: { expr: string }[] }[];
      templating: { list: { query: { query: string } }[] };
    };
    const queries = [
      ...dashboard.panels.flatMap((p) =>
        (p.targets ?? []).map((target) => ({ where: p.title, expr: target.expr })),
      ),
      ...dashboard.templating.list.map((v) => ({ where: 'templating', expr: v.query.query })),
    ];
    assert.ok(queries.length > 10);
    for (const { where, expr } of queries) {
      const names = [...expr.matchAll(/([a-zA-Z_:][\w:]*)\s*\{|label_values\(\s*([a-zA-Z_:][\w:]*)/g)].map(
        (m) => m[1] ?? m[2],
      );
      assert.ok(names.length > 0, `${where}: no metric in ${expr}`);
      for (const name of names) assert.ok(exposed.has(name), `${where}: ${String(name)} is not in /metrics`);
    }

    // systemctl reload: ExecReload's signal to the main process; the server goes on.
    const reload = /kill -(\w+) \$MAINPID/.exec(unit.get('ExecReload') ?? '')?.[1];
    assert.equal(reload, 'HUP');
    const since = d.logs.length;
    process.kill(d.pid, 'SIGHUP');
    await d.waitForLog((e) => /reload|users loaded/i.test(e.msg), { since });
    assert.match((await dialog(d.port, ['USER alice', 'PASS pw', 'QUIT']))[2] ?? '', /^\+OK/);
    // systemctl stop with KillMode=mixed: SIGTERM (KillSignal's default) to the main process only.
    assert.equal(unit.get('KillMode'), 'mixed');
    assert.equal(await d.stop('SIGTERM'), 0);
    assert.deepEqual(
      d.logs.filter((e) => e.level >= 50),
      [],
    );
  },
);
