// The daemon's side of the monitor: the default admins file, when the monitor may leave loopback,
// --no-monitor, the metrics endpoint against poplarctl's counters, and secrets kept out of the logs.
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { access, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { runPoplar, startDaemon, type DaemonOptions, type RunningDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { monitorPort, runCtl, type CtlOptions, type CtlResult } from '../helpers/poplarctl.js';
import { tempDir } from '../helpers/temp-dir.js';

const DEFAULT_TOKEN = '123456789abcdef1';
/** A test that waits for something that never comes fails instead of hanging. */
const LIMIT = { timeout: 120_000 };
const DEFAULT_TOKEN_WARNING =
  'the monitor accepts the default admin token: replace it (poplarctl admins add, then delete root)';
const REFUSED_TOKEN = /^poplarctl: the server refused the token/;
const MESSAGE = 'Subject: hi\r\n\r\nHello.\r\n';

/**
 * Every secret the tests of this file use, and every output of every daemon they ran: the last
 * test checks that no daemon ever wrote one (the demo password `bar` is left out: demo mode
 * prints it on purpose, to tell the operator how to log in).
 */
const secrets = new Set<string>([DEFAULT_TOKEN]);
const outputs: { readonly name: string; readonly text: () => string }[] = [];

function secret<T extends string>(value: T): T {
  secrets.add(value);
  return value;
}

async function daemon(t: TestContext, options: DaemonOptions): Promise<RunningDaemon> {
  const d = await startDaemon(t, options);
  outputs.push({ name: `${t.name} (pid ${d.pid})`, text: () => d.stdout() + d.stderr() });
  return d;
}

async function failedStart(t: TestContext, args: readonly string[], cwd: string) {
  const run = await runPoplar(t, args, { cwd });
  outputs.push({ name: `${t.name}: ${args.join(' ')}`, text: () => run.stdout + run.stderr });
  return run;
}

function ctlAt(t: TestContext, port: number, host = '127.0.0.1') {
  return (args: readonly string[], options?: CtlOptions): Promise<CtlResult> =>
    runCtl(t, ['--host', host, '--port', String(port), ...args], options);
}

function assertOk(run: CtlResult, stdout: string | RegExp): void {
  assert.equal(run.stderr, '');
  if (typeof stdout === 'string') assert.equal(run.stdout, stdout);
  else assert.match(run.stdout, stdout);
  assert.equal(run.code, 0);
}

function assertRefusedToken(run: CtlResult): void {
  assert.match(run.stderr, REFUSED_TOKEN);
  assert.equal(run.code, 1);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** A users file (--users) with one {PLAIN} user and their empty mailbox, failed logins at once. */
async function usersSetup(cwd: string, user: string, password: string): Promise<string[]> {
  await writeFile(join(cwd, 'users'), `${user}:{PLAIN}${password}\n`);
  await writeFile(join(cwd, 'poplar.toml'), '[limits]\nauthFailureDelayMs = 0\nmaxAuthFailures = 10\n');
  await buildMaildir(join(cwd, 'mail'), user, [{ content: MESSAGE }]);
  return ['--config', 'poplar.toml', '--users', 'users', '--listen', '127.0.0.1', '-p', '0', '-m', 'mail'];
}

/** An admins-file line made by `poplar hash-password`, as an operator makes one. */
async function adminLine(t: TestContext, name: string, token: string): Promise<string> {
  const run = await runPoplar(t, ['hash-password', '--scheme', 'SSHA256', '--user', name], {
    input: `${token}\n`,
  });
  assert.equal(run.code, 0, run.stderr);
  return run.stdout;
}

/** GET http://127.0.0.1:port/path: status and body. */
function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** The value of an unlabelled sample in Prometheus' text format. */
function sample(metrics: string, name: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line !== undefined, `${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

/** A full session as `user`: login, RETR 1, QUIT; resolves once the daemon has closed it. */
async function session(d: RunningDaemon, user: string, password: string): Promise<number> {
  const client = await Pop3TestClient.connect(d.port, '127.0.0.1', { readGreeting: false });
  const localPort = client.socket.localPort;
  let received = 0;
  client.socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
  });
  try {
    client.greeting = await client.readLine();
    await client.login(user, password);
    assert.match((await client.multi('RETR 1')).status, /^\+OK/);
    assert.match(await client.command('QUIT'), /^\+OK/);
    await client.closed();
  } finally {
    client.close();
  }
  const opened = await d.waitForLog((e) => e.msg === 'connection opened' && e['port'] === localPort);
  await d.waitForLog((e) => e.msg === 'connection closed' && e['cid'] === opened['cid']);
  return received;
}

test(
  'the default admins file: created 0600 with the token hashed, warned about, replaced, then the monitor may leave loopback',
  LIMIT,
  async (t) => {
    const cwd = await tempDir(t);
    const adminsFile = join(cwd, 'mail', '.poplar-admins');
    const args = ['-m', 'mail', '-p', '0'];

    const first = await daemon(t, { args, cwd });
    const created = first.logs.find((e) => e.msg === 'default admins file created');
    assert.equal(created?.['file'], join('mail', '.poplar-admins'), 'relative to its working directory');
    assert.equal((await stat(adminsFile)).mode & 0o777, 0o600);
    const text = await readFile(adminsFile, 'utf8');
    assert.match(text, /^root:\{SSHA256\}[A-Za-z0-9+/]+={0,2}\n$/);
    assert.ok(!text.includes(DEFAULT_TOKEN), 'the token is stored hashed');
    const warning = first.logs.find((e) => e.msg === DEFAULT_TOKEN_WARNING);
    assert.ok(warning, 'the default token is warned about');
    assert.equal(warning.level, 40, 'a warning');
    assert.equal(warning['admin'], 'root');
    assertOk(await ctlAt(t, monitorPort(first.started))(['-C', DEFAULT_TOKEN]), 'historic connections: 0\n');
    assert.equal(await first.stop(), 0);

    // The default token is valid: the monitor may not leave loopback.
    const refused = await failedStart(t, [...args, '--monitor-listen', '0.0.0.0'], cwd);
    assert.equal(refused.code, 1);
    assert.equal(
      refused.stderr,
      'poplar: refusing to expose the monitor on 0.0.0.0 while the default admin token is valid; ' +
        'give an admins file with --admins, or keep the monitor on loopback\n',
    );
    assert.ok(refused.stdout.includes('"msg":"poplar could not start"'));
    assert.equal(await readFile(adminsFile, 'utf8'), text, 'the admins file is left alone');

    // Replace root by an admin of one's own, on loopback, with poplarctl.
    const second = await daemon(t, { args, cwd });
    assert.ok(second.logs.some((e) => e.msg === DEFAULT_TOKEN_WARNING));
    assert.ok(!second.logs.some((e) => e.msg === 'default admins file created'), 'not created again');
    const ctl = ctlAt(t, monitorPort(second.started));
    const opsToken = secret('ops-Token.000001');
    assertOk(
      await ctl(['admins', 'add', 'ops'], { env: { POPLAR_TOKEN: DEFAULT_TOKEN }, input: `${opsToken}\n` }),
      'admin ops added\n',
    );
    assertOk(
      await ctl(['admins', 'del', 'root'], { env: { POPLAR_TOKEN: opsToken } }),
      'admin root deleted\n',
    );
    assertRefusedToken(await ctl(['-C', DEFAULT_TOKEN]));
    assertOk(await ctl(['-C', opsToken]), 'historic connections: 0\n');
    const replaced = await readFile(adminsFile, 'utf8');
    assert.match(replaced, /^ops:\{SSHA256\}[A-Za-z0-9+/]+={0,2}\n$/);
    assert.equal((await stat(adminsFile)).mode & 0o777, 0o600, 'still 0600 after the edit');
    assert.equal(await second.stop(), 0);

    // Now the monitor may listen beyond loopback, and says nothing about a default token.
    const exposed = await daemon(t, { args: [...args, '--monitor-listen', '0.0.0.0'], cwd });
    const bound = exposed.started['monitor'] as { address: string }[];
    assert.deepEqual(
      bound.map((b) => b.address),
      ['0.0.0.0'],
    );
    assert.ok(!exposed.logs.some((e) => e.msg === DEFAULT_TOKEN_WARNING));
    const exposedCtl = ctlAt(t, monitorPort(exposed.started, '0.0.0.0'));
    const [ops, old, backAgain] = await Promise.all([
      exposedCtl(['-C', opsToken]),
      exposedCtl(['-C', DEFAULT_TOKEN]),
      // Nor can the default token come back while the monitor is exposed.
      exposedCtl(['-U', `again:${DEFAULT_TOKEN}`, opsToken]),
    ]);
    assertOk(ops, 'historic connections: 0\n');
    assertRefusedToken(old);
    assert.equal(backAgain.code, 1);
    assert.match(backAgain.stderr, /status 0x04/);
    assert.equal(await readFile(adminsFile, 'utf8'), replaced);
    assert.equal(await exposed.stop(), 0);
  },
);

test(
  '--admins FILE: another token lets the monitor listen on 0.0.0.0; the default token under any name does not',
  LIMIT,
  async (t) => {
    const cwd = await tempDir(t);
    const usersArgs = await usersSetup(cwd, 'alice', secret('alice-pw-7'));
    const token = secret('Adm1n-token-0007');
    const ops = await adminLine(t, 'ops', token);
    const backdoor = await adminLine(t, 'backdoor', DEFAULT_TOKEN);

    // The default token is refused beyond loopback whichever admin holds it, not only root.
    await writeFile(join(cwd, 'admins'), ops + backdoor, { mode: 0o600 });
    const refused = await failedStart(
      t,
      [...usersArgs, '--admins', 'admins', '--monitor-listen', '0.0.0.0'],
      cwd,
    );
    assert.equal(refused.code, 1, 'a default token held by another admin blocks an exposed monitor');
    assert.match(refused.stderr, /^poplar: refusing to expose the monitor on 0\.0\.0\.0/);

    await writeFile(join(cwd, 'admins'), ops, { mode: 0o600 });
    const d = await daemon(t, {
      args: [
        ...usersArgs,
        '--admins',
        'admins',
        '--monitor-listen',
        '0.0.0.0',
        '--metrics-listen',
        '127.0.0.1:0',
      ],
      cwd,
    });
    const bound = d.started['monitor'] as { address: string }[];
    assert.deepEqual(
      bound.map((b) => b.address),
      ['0.0.0.0'],
    );
    assert.ok(!d.logs.some((e) => e.msg === DEFAULT_TOKEN_WARNING));
    assert.equal(await exists(join(cwd, 'mail', '.poplar-admins')), false, 'no default admins file');
    const ctl = ctlAt(t, monitorPort(d.started, '0.0.0.0'));
    assertRefusedToken(await ctl(['-C', DEFAULT_TOKEN]));

    await t.test(
      'GET /metrics: pop3_connections_total equals poplarctl -C, bytes sent equal -b',
      async () => {
        const listening = await d.waitForLog((e) => e.msg === 'metrics listening');
        assert.equal(listening['address'], '127.0.0.1');
        const metricsPort = listening['port'] as number;
        const received =
          (await session(d, 'alice', 'alice-pw-7')) + (await session(d, 'alice', 'alice-pw-7'));

        const [metrics, dashboard, historic, bytes] = await Promise.all([
          httpGet(metricsPort, '/metrics'),
          httpGet(metricsPort, '/'),
          ctl(['-C', token]),
          ctl(['-b', token]),
        ]);
        assert.equal(metrics.status, 200);
        // `/` is the dashboard: an admin's name and token first.
        assert.equal(dashboard.status, 401);
        assertOk(historic, 'historic connections: 2\n');
        assertOk(bytes, `transferred bytes: ${received}\n`);
        assert.equal(sample(metrics.body, 'pop3_connections_total'), 2);
        assert.equal(sample(metrics.body, 'pop3_bytes_sent_total'), received);
        assert.equal(sample(metrics.body, 'pop3_messages_retrieved_total'), 2);
        assert.equal(sample(metrics.body, 'pop3_connections'), 0);
        // Monitor requests are counted there, not as POP3 connections.
        const monitorLines = metrics.body.split('\n').filter((l) => l.startsWith('monitor_requests_total'));
        assert.ok(monitorLines.length > 0, monitorLines.join('\n'));
        for (const s of secrets) assert.ok(!metrics.body.includes(s), 'no secret in /metrics');
      },
    );
    assert.equal(await d.stop(), 0);
  },
);

test('--no-monitor: no monitor listener and no admins file', LIMIT, async (t) => {
  const cwd = await tempDir(t);
  const d = await daemon(t, { args: ['-m', 'mail', '-p', '0', '--no-monitor'], cwd });
  assert.deepEqual(d.started['monitor'], []);
  assert.ok(!d.logs.some((e) => e.msg === 'monitor listening'));
  assert.ok(!d.logs.some((e) => e.msg === DEFAULT_TOKEN_WARNING));
  assert.equal(await exists(join(cwd, 'mail', '.poplar-admins')), false);
  assert.equal(await d.stop(), 0);
});

test(
  'no daemon log ever holds a password or a token (every secret of this file, trace level included)',
  LIMIT,
  async (t) => {
    const cwd = await tempDir(t);
    const usersArgs = await usersSetup(cwd, 'bob', secret('bob-Pass-w0rd'));
    const d = await daemon(t, { args: [...usersArgs, '--log-level', 'trace'], cwd });
    const ctl = ctlAt(t, monitorPort(d.started));
    // With --users, the admins file is made with a random token, shown in a 0600 file only.
    const rootToken = secret((await readFile(join(cwd, 'mail', '.poplar-admins.token'), 'utf8')).trim());
    const adminToken = secret('Trace-Token-0001');
    const wrongToken = secret('Wrong-Token-0001');
    const carolPassword = secret('carol-Secret-1');
    const davePassword = secret('dave-Secret-2');
    const env = { POPLAR_TOKEN: rootToken };

    assertOk(await ctl(['-U', `tracer:${adminToken}`, rootToken]), 'admin tracer added\n');
    const runs = await Promise.all([
      ctl(['-u', `carol:${carolPassword}`, adminToken]),
      ctl(['users', 'add', 'dave'], { env, input: `${davePassword}\n` }),
      ctl(['-C', wrongToken]),
      ctl(['-u', `mallory:${secret('mallory-Pw-3')}`, wrongToken]),
      ctl(['admins', 'add', 'x'], { env, input: `${secret('Other-Token-0002')}\n` }),
      ctl(['stats'], { env: { POPLAR_TOKEN: adminToken } }),
    ]);
    assert.deepEqual(
      runs.map((r) => r.code),
      [0, 0, 1, 1, 0, 0],
    );
    await buildMaildir(join(cwd, 'mail'), 'carol', [{ content: MESSAGE }]);
    await session(d, 'bob', 'bob-Pass-w0rd');
    await session(d, 'carol', carolPassword);
    const failing = await Pop3TestClient.connect(d.port);
    try {
      await failing.command('USER carol');
      assert.equal(
        await failing.command(`PASS ${secret('not-Carols-pw')}`),
        '-ERR [AUTH] invalid user name or password',
      );
    } finally {
      failing.close();
    }
    await d.waitForLog((e) => e.msg === 'login failed');
    for (const run of runs)
      for (const s of secrets) assert.ok(!run.stderr.includes(s), 'not in poplarctl messages');
    assert.equal(await d.stop(), 0);

    // Every daemon of this file, this one included, now that it has stopped.
    for (const { name, text } of outputs) {
      const output = text();
      assert.ok(output.length > 0, `${name} wrote logs`);
      for (const s of secrets) assert.ok(!output.includes(s), `${name} logged the secret ${s}`);
    }
  },
);
