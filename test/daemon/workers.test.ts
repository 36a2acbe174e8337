// The daemon with --workers 2 (node:cluster): POP3 served by both workers on one port, maildrop
// locks that hold across them, the monitor's counters and /metrics summed over them, users added
// and removed through the monitor seen by every worker at once, chunk-size and mail-root changes
// in every worker and in a replacement, a dead worker replaced, a clean stop, and workers that
// exit with a killed primary. Which worker served a connection is the pid that logged it.
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { test, type TestContext } from 'node:test';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { sendMonitorRequest, tokenBytes } from '../../src/monitor/client.js';
import type { ConfigTarget, GetTarget, MonitorResponse } from '../../src/monitor/protocol/messages.js';
import { startDaemon, type LogEntry, type RunningDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { monitorPort } from '../helpers/poplarctl.js';
import { tempDir } from '../helpers/temp-dir.js';

const LIMIT = { timeout: 120_000 };
/** An admin of the admins file given with --admins (with --users, the public token opens nothing). */
const TOKEN = 'Cluster-Token-01';
const USERS = ['u0', 'u1', 'u2', 'u3'];
const MESSAGE = 'Subject: hi\r\n\r\nHello from the cluster.\r\n';

async function cluster(t: TestContext, extra: readonly string[] = []): Promise<RunningDaemon> {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), USERS.map((u) => `${u}:{PLAIN}pw-${u}\n`).join(''));
  await writeFile(join(cwd, 'poplar.toml'), '[limits]\nauthFailureDelayMs = 0\n');
  await writeFile(join(cwd, 'admins'), `ops:${await hashPassword(TOKEN, 'SSHA256')}\n`, { mode: 0o600 });
  for (const user of USERS) await buildMaildir(join(cwd, 'mail'), user, [{ content: MESSAGE }]);
  return startDaemon(t, {
    cwd,
    args: [
      '--workers',
      '2',
      '--users',
      'users',
      '--admins',
      'admins',
      '--config',
      'poplar.toml',
      '--listen',
      '127.0.0.1',
      '-p',
      '0',
      '-m',
      'mail',
      ...extra,
    ],
  });
}

function monitor(d: RunningDaemon) {
  const port = monitorPort(d.started);
  const ask = (
    type: 'get' | 'config',
    target: GetTarget | ConfigTarget,
    data = Buffer.alloc(0),
  ): Promise<MonitorResponse> =>
    sendMonitorRequest(
      { host: '127.0.0.1', port },
      type === 'get'
        ? { type, token: tokenBytes(TOKEN), target: target as GetTarget, data }
        : { type, token: tokenBytes(TOKEN), target: target as ConfigTarget, data },
    );
  return {
    async count(target: GetTarget): Promise<number> {
      const response = await ask('get', target);
      assert.equal(response.status, 'ok');
      return Number(
        response.data.length === 8 ? response.data.readBigUInt64BE() : response.data.readUInt32BE(),
      );
    },
    async snapshot(): Promise<{ counters: Record<string, number>; sessionCount: number }> {
      const response = await ask('get', 'snapshot');
      assert.equal(response.status, 'ok');
      return JSON.parse(response.data.toString('utf8')) as {
        counters: Record<string, number>;
        sessionCount: number;
      };
    },
    async config(target: ConfigTarget, ...fields: string[]): Promise<string> {
      return (await ask('config', target, Buffer.from(fields.join('\0')))).status;
    },
  };
}

/** Login, STAT, RETR 1, QUIT; resolves to the RETR body. */
async function fullSession(d: RunningDaemon, user: string, password = `pw-${user}`): Promise<string> {
  const client = await Pop3TestClient.connect(d.port);
  try {
    assert.match(await client.login(user, password), /^\+OK/);
    assert.match(await client.command('STAT'), /^\+OK 1 /);
    const retr = await client.multi('RETR 1');
    assert.match(retr.status, /^\+OK/);
    assert.match(await client.command('QUIT'), /^\+OK/);
    return retr.lines.join('\n');
  } finally {
    client.close();
  }
}

/** Pids of the processes that logged `msg`. */
const pidsThatLogged = (d: RunningDaemon, msg: string): Set<unknown> =>
  new Set(d.logs.filter((e) => e.msg === msg).map((e) => e['pid']));

/** Whether process `pid` has exited: it is gone, or a zombie waiting to be reaped (Linux /proc). */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return true;
    throw error;
  }
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return false;
  }
}

/** Pids of the workers, from their 'listening' lines (the primary serves no POP3). */
const workerPids = (d: RunningDaemon): number[] =>
  [...pidsThatLogged(d, 'listening')].filter(
    (pid): pid is number => typeof pid === 'number' && pid !== d.pid,
  );

/**
 * Connects and reads the greeting. `pid` is the process that served the connection: the one that
 * logged 'connection opened' for this client's port.
 */
async function connectToWorker(d: RunningDaemon): Promise<{ client: Pop3TestClient; pid: number }> {
  const since = d.logs.length;
  const client = await Pop3TestClient.connect(d.port);
  try {
    const port = client.socket.localPort;
    const opened = await d.waitForLog((e) => e.msg === 'connection opened' && e['port'] === port, { since });
    return { client, pid: opened['pid'] as number };
  } catch (error) {
    client.close();
    throw error;
  }
}

/** `transferChunkBytes` of a 'limits applied' entry. */
const chunkBytesOf = (entry: LogEntry): unknown =>
  (entry['limits'] as Record<string, unknown> | undefined)?.['transferChunkBytes'];

test(
  'two workers share the POP3 port; the monitor and /metrics report totals over both',
  LIMIT,
  async (t) => {
    const d = await cluster(t, ['--metrics-listen', '127.0.0.1:0']);
    assert.equal(d.started['workers'], 2);
    for (let i = 0; i < 8; i++) {
      const user = USERS[i % USERS.length] as string;
      assert.match(await fullSession(d, user), /Hello from the cluster/);
    }
    // Connections go round the workers: both served logins.
    assert.equal(pidsThatLogged(d, 'login').size, 2);
    assert.ok(!pidsThatLogged(d, 'login').has(d.pid), 'the primary serves no POP3');
    await d.waitForLog((e) => e.msg === 'logout' && d.logs.filter((x) => x.msg === 'logout').length >= 8);
    const m = monitor(d);
    assert.equal(await m.count('loginsSucceeded'), 8);
    assert.equal(await m.count('historicConnections'), 8);
    assert.equal(await m.count('messagesRetrieved'), 8);
    const snap = await m.snapshot();
    assert.equal(snap.counters['loginsSucceeded'], 8);
    assert.equal(snap.sessionCount, 0);

    const listening = await d.waitForLog((e) => e.msg === 'metrics listening');
    const httpGet = (path: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        get({ host: '127.0.0.1', port: listening['port'] as number, path }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, body });
          });
        }).on('error', reject);
      });
    const metrics = (await httpGet('/metrics')).body;
    // Every worker answered the primary: healthy. The build info is there once, not once per worker.
    assert.deepEqual(await httpGet('/healthz'), { status: 200, body: 'ok\n' });
    const packageJson = readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
    const version = (JSON.parse(packageJson) as { version: string }).version;
    assert.deepEqual(
      metrics.split('\n').filter((l) => l.startsWith('poplar_build_info')),
      [`poplar_build_info{version="${version}",node="${process.version}"} 1`],
    );
    const sample = (name: string): number =>
      Number(
        metrics
          .split('\n')
          .find((l) => l.startsWith(`${name} `))
          ?.slice(name.length + 1),
      );
    assert.equal(sample('pop3_connections_total'), 8);
    assert.equal(sample('pop3_messages_retrieved_total'), 8);
    assert.match(metrics, /monitor_requests_total\{type="get",status="ok"\} [1-9]/);
  },
);

test('a maildrop locked by a session in one worker is IN-USE in the other', LIMIT, async (t) => {
  const d = await cluster(t);
  const holder = await connectToWorker(d);
  t.after(() => {
    holder.client.close();
  });
  assert.match(await holder.client.login('u0', 'pw-u0'), /^\+OK/);
  // Connections go round the workers: at least two more, until one has reached the other
  // worker. Every one must be refused.
  const served: number[] = [];
  while (served.length < 2 || served.every((pid) => pid === holder.pid)) {
    assert.ok(served.length < 10, `no connection reached a worker other than ${String(holder.pid)}`);
    const other = await connectToWorker(d);
    try {
      served.push(other.pid);
      assert.match(await other.client.command('USER u0'), /^\+OK/);
      assert.match(await other.client.command('PASS pw-u0'), /^-ERR \[IN-USE\]/);
    } finally {
      other.client.close();
    }
  }
  assert.ok(workerPids(d).includes(holder.pid), 'a worker holds the maildrop');
  assert.ok(
    served.some((pid) => pid !== holder.pid && workerPids(d).includes(pid)),
    `refused in the other worker (holder ${String(holder.pid)}, refused in ${served.join(', ')})`,
  );
  assert.match(await holder.client.command('QUIT'), /^\+OK/);
});

test('users added and deleted through the monitor count in every worker at once', LIMIT, async (t) => {
  const d = await cluster(t);
  const m = monitor(d);
  assert.equal(await m.config('setUser', 'newbie', 'fresh-pw-1'), 'ok');
  // Answered only once every worker has re-read the users file: each connection logs in.
  for (let i = 0; i < 4; i++) {
    const c = await Pop3TestClient.connect(d.port);
    try {
      assert.match(await c.login('newbie', 'fresh-pw-1'), /^\+OK/);
      assert.match(await c.command('QUIT'), /^\+OK/);
    } finally {
      c.close();
    }
  }
  // Open sessions of a deleted user end, whichever worker holds them.
  const open = [await Pop3TestClient.connect(d.port), await Pop3TestClient.connect(d.port)];
  assert.match(await (open[0] as Pop3TestClient).login('newbie', 'fresh-pw-1'), /^\+OK/);
  assert.match(await (open[1] as Pop3TestClient).login('u1', 'pw-u1'), /^\+OK/);
  assert.equal(await m.config('deleteUser', 'newbie'), 'ok');
  assert.match(await (open[0] as Pop3TestClient).closed(), /-ERR \[SYS\/TEMP\] account removed/);
  // Another user's session goes on.
  assert.match(await (open[1] as Pop3TestClient).command('STAT'), /^\+OK 1 /);
  (open[1] as Pop3TestClient).close();
  const c = await Pop3TestClient.connect(d.port);
  try {
    assert.match(await c.command('USER newbie'), /^\+OK/);
    assert.match(await c.command('PASS fresh-pw-1'), /^-ERR \[AUTH\]/);
  } finally {
    c.close();
  }
});

test('a chunk-size and a mail-root change through the monitor reach every worker', LIMIT, async (t) => {
  const d = await cluster(t);
  const workers = workerPids(d);
  assert.equal(workers.length, 2);
  const m = monitor(d);
  const since = d.logs.length;
  assert.equal(await m.config('chunkSize', '4096'), 'ok');
  for (const pid of workers) {
    await d.waitForLog((e) => e.msg === 'limits applied' && e['pid'] === pid && chunkBytesOf(e) === 4096, {
      since,
    });
  }
  // Another mail root, where u0 has two messages instead of one.
  const other = await tempDir(t);
  await buildMaildir(other, 'u0', [{ content: MESSAGE }, { content: MESSAGE }]);
  assert.equal(await m.config('maildir', other), 'ok');
  // Log in until every worker has served a session: each one reads the new root.
  const served = new Set<number>();
  for (let tries = 0; served.size < workers.length; tries++) {
    assert.ok(tries < 10, `sessions reached only ${[...served].join(', ')}`);
    const { client, pid } = await connectToWorker(d);
    try {
      assert.match(await client.login('u0', 'pw-u0'), /^\+OK/);
      assert.match(await client.command('STAT'), /^\+OK 2 /, `the new root in worker ${String(pid)}`);
      assert.match(await client.command('QUIT'), /^\+OK/);
    } finally {
      client.close();
    }
    served.add(pid);
  }
  assert.deepEqual([...served].sort(), [...workers].sort());
});

test(
  'a replacement worker starts with the chunk size and mail root changed since start',
  LIMIT,
  async (t) => {
    const d = await cluster(t);
    const workers = workerPids(d);
    assert.equal(workers.length, 2);
    const m = monitor(d);
    const other = await tempDir(t);
    await buildMaildir(other, 'u0', [{ content: MESSAGE }, { content: MESSAGE }]);
    assert.equal(await m.config('chunkSize', '4096'), 'ok');
    assert.equal(await m.config('maildir', other), 'ok');

    const victim = workers[0] as number;
    const since = d.logs.length;
    process.kill(victim, 'SIGKILL');
    await d.waitForLog((e) => e.msg === 'worker died; starting another' && e['worker'] === victim, { since });
    const listening = await d.waitForLog(
      (e) => e.msg === 'listening' && e['pid'] !== d.pid && !workers.includes(e['pid'] as number),
      { since },
    );
    const replacement = listening['pid'] as number;
    // The primary tells the new worker what the monitor changed.
    await d.waitForLog(
      (e) => e.msg === 'limits applied' && e['pid'] === replacement && chunkBytesOf(e) === 4096,
      { since },
    );
    await d.waitForLog(
      (e) => e.msg === 'mail root applied' && e['pid'] === replacement && e['root'] === resolve(other),
      { since },
    );
    // Log in until the replacement serves a session: it reads the new root.
    for (let tries = 0, pid = 0; pid !== replacement; tries++) {
      assert.ok(tries < 10, `no session reached the replacement worker ${String(replacement)}`);
      const session = await connectToWorker(d);
      pid = session.pid;
      try {
        assert.match(await session.client.login('u0', 'pw-u0'), /^\+OK/);
        assert.match(
          await session.client.command('STAT'),
          /^\+OK 2 /,
          `the new root in worker ${String(pid)}`,
        );
        assert.match(await session.client.command('QUIT'), /^\+OK/);
      } finally {
        session.client.close();
      }
    }
  },
);

test('a worker that dies is replaced; SIGTERM stops the primary and every worker', LIMIT, async (t) => {
  const d = await cluster(t);
  const workers = [...pidsThatLogged(d, 'listening')] as number[];
  assert.equal(workers.length, 2);
  const victim = workers[0] as number;
  process.kill(victim, 'SIGKILL');
  await d.waitForLog((e) => e.msg === 'worker died; starting another' && e['worker'] === victim);
  await d.waitForLog((e) => e.msg === 'listening' && !workers.includes(e['pid'] as number));
  for (const user of USERS) assert.match(await fullSession(d, user), /Hello from the cluster/);
  const all = [...pidsThatLogged(d, 'listening')] as number[];
  assert.equal(await d.stop('SIGTERM'), 0);
  for (const pid of all) {
    assert.throws(
      () => process.kill(pid, 0),
      (error: NodeJS.ErrnoException) => error.code === 'ESRCH',
      `worker ${String(pid)} still runs`,
    );
  }
});

test('when the primary is killed, every worker exits at once', LIMIT, async (t) => {
  const d = await cluster(t);
  const workers = workerPids(d);
  assert.equal(workers.length, 2);
  t.after(() => {
    for (const pid of workers) if (!isGone(pid)) process.kill(pid, 'SIGKILL');
  });
  process.kill(d.pid, 'SIGKILL'); // the primary alone, not its process group
  assert.equal((await d.exited).signal, 'SIGKILL');
  // The workers write to the primary's stdout: it closes once the last of them has exited.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    d.outputClosed,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`workers still running: ${workers.filter((pid) => !isGone(pid)).join(', ')}`));
      }, 15_000);
    }),
  ]).finally(() => {
    clearTimeout(timer);
  });
  // An exited worker may still wait to be reaped by its new parent.
  for (let tries = 0; workers.some((pid) => !isGone(pid)); tries++) {
    assert.ok(tries < 100, `workers still running: ${workers.filter((pid) => !isGone(pid)).join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
});
