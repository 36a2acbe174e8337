// With --workers 2 the per-address connection limit and the login throttle count once for the
// machine: the primary keeps the counts, the workers ask it. Connections go round the workers
// (node:cluster's round-robin); which worker served a connection is the pid that logged it.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { startDaemon, type LogEntry, type RunningDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { tempDir } from '../helpers/temp-dir.js';

const LIMIT = { timeout: 120_000 };
const REFUSED = '-ERR [SYS/TEMP] too many connections from your address';

async function cluster(t: TestContext, limits: string): Promise<RunningDaemon> {
  const cwd = await tempDir(t);
  await writeFile(join(cwd, 'users'), 'u0:{PLAIN}pw-u0\nu1:{PLAIN}pw-u1\n');
  await writeFile(join(cwd, 'poplar.toml'), `[limits]\n${limits}`);
  await writeFile(join(cwd, 'admins'), '');
  for (const user of ['u0', 'u1']) await buildMaildir(join(cwd, 'mail'), user, [{ content: 'Hi\r\n' }]);
  // The admins file is given (empty) so that no admin token is generated.
  const args = ['--workers', '2', '--users', 'users', '--admins', 'admins', '--config', 'poplar.toml'];
  return startDaemon(t, { cwd, args: [...args, '--listen', '127.0.0.1', '-p', '0', '-m', 'mail'] });
}

/**
 * Connects and reads the greeting; `pid` is the worker that accepted or refused the connection,
 * from its 'connection opened' (by the client's port) or 'connection refused' line.
 */
async function connectToWorker(
  t: TestContext,
  d: RunningDaemon,
): Promise<{ client: Pop3TestClient; pid: number }> {
  const since = d.logs.length;
  const client = await Pop3TestClient.connect(d.port);
  t.after(() => {
    client.close();
  });
  const port = client.socket.localPort;
  const logged = await d.waitForLog(
    (e) => (e.msg === 'connection opened' && e['port'] === port) || e.msg === 'connection refused',
    { since },
  );
  return { client, pid: logged['pid'] as number };
}

test(
  'maxConnectionsPerIp holds across workers: a worker with a free slot of its own refuses',
  LIMIT,
  async (t) => {
    const d = await cluster(t, 'maxConnectionsPerIp = 2\n');
    const accepted = new Map<number, number>();
    const open: Pop3TestClient[] = [];
    for (let i = 0; i < 2; i++) {
      const { client, pid } = await connectToWorker(t, d);
      assert.match(client.greeting, /^\+OK/);
      accepted.set(pid, (accepted.get(pid) ?? 0) + 1);
      open.push(client);
    }
    // Every further connection is refused, whichever worker takes it, also one that holds fewer
    // than two of its own: with each worker counting alone, round-robin makes the third one land there.
    const refusedBy = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const { client, pid } = await connectToWorker(t, d);
      assert.equal(client.greeting, REFUSED, `connection ${i + 3} (worker ${pid})`);
      refusedBy.add(pid);
    }
    assert.ok(
      [...refusedBy].some((pid) => (accepted.get(pid) ?? 0) < 2),
      `refused only by workers full on their own (accepted ${JSON.stringify([...accepted])})`,
    );
    // A slot given back in one worker is free in either.
    const since = d.logs.length;
    assert.match((await open[0]?.command('QUIT')) ?? '', /^\+OK/);
    await d.waitForLog((e) => e.msg === 'connection closed', { since });
    for (let i = 0; i < 2; i++) {
      const { client } = await connectToWorker(t, d);
      assert.match(client.greeting, i === 0 ? /^\+OK/ : /^-ERR \[SYS\/TEMP\] too many connections from/);
    }
  },
);

test('the login throttle holds across workers: failures in one worker slow the other', LIMIT, async (t) => {
  const d = await cluster(t, 'authFailureDelayMs = 1\nmaxAuthFailures = 10\n');
  const failures = (e: LogEntry): unknown => e['failures'];
  const a = await connectToWorker(t, d);
  for (let i = 0; i < 2; i++) {
    assert.equal(await a.client.command('USER u0'), '+OK send PASS');
    assert.match(await a.client.command('PASS wrong'), /^-ERR \[AUTH\]/);
  }
  // A connection served by the other worker.
  let b = await connectToWorker(t, d);
  while (b.pid === a.pid) b = await connectToWorker(t, d);
  // Its right password waits out the address's penalty, known there without asking the primary ...
  const since = d.logs.length;
  assert.match(await b.client.login('u1', 'pw-u1'), /^\+OK u1 has 1 message/);
  const held = await d.waitForLog((e) => e.msg === 'throttled login attempt', { since });
  assert.equal(held['pid'], b.pid);
  assert.equal(failures(held), 2);
  // ... and its next failure is the address's third, in either worker (the success cleared nothing).
  let c = await connectToWorker(t, d);
  while (c.pid !== b.pid) c = await connectToWorker(t, d);
  const failed = (since: number): Promise<LogEntry> =>
    d.waitForLog((e) => e.msg === 'login failed', { since });
  let mark = d.logs.length;
  assert.equal(await c.client.command('USER u0'), '+OK send PASS');
  assert.match(await c.client.command('PASS wrong'), /^-ERR \[AUTH\]/);
  const third = await failed(mark);
  assert.equal(third['pid'], b.pid);
  assert.equal(failures(third), 3);
  mark = d.logs.length;
  assert.equal(await a.client.command('USER u0'), '+OK send PASS');
  assert.match(await a.client.command('PASS wrong'), /^-ERR \[AUTH\]/);
  const fourth = await failed(mark);
  assert.equal(fourth['pid'], a.pid);
  assert.equal(failures(fourth), 4);
});

/** Opens connections until `count` are served; the next one must be refused (the quota is whole). */
async function assertWholeQuota(
  t: TestContext,
  d: RunningDaemon,
  count: number,
  what: string,
): Promise<void> {
  for (let i = 0; i < count; i++) {
    const { client } = await connectToWorker(t, d);
    assert.match(client.greeting, /^\+OK/, `${what}: connection ${i + 1} of ${count}`);
  }
  const { client } = await connectToWorker(t, d);
  assert.equal(client.greeting, REFUSED, `${what}: connection ${count + 1}`);
}

test(
  'slots come back on every close path across workers: after 6 rounds of quit, reset, failed login and refusal the quota is whole',
  LIMIT,
  async (t) => {
    const d = await cluster(t, 'maxConnectionsPerIp = 3\nmaxAuthFailures = 1\nauthFailureDelayMs = 1\n');
    for (let round = 0; round < 6; round++) {
      const [quits, resets, fails] = [
        await connectToWorker(t, d),
        await connectToWorker(t, d),
        await connectToWorker(t, d),
      ];
      const refused = await connectToWorker(t, d);
      assert.equal(refused.client.greeting, REFUSED, `round ${round}`);
      const since = d.logs.length;
      assert.match(await quits.client.command('QUIT'), /^\+OK/);
      resets.client.socket.resetAndDestroy();
      assert.equal(await fails.client.command('USER u0'), '+OK send PASS');
      assert.match(await fails.client.command('PASS wrong'), /too many failures/);
      let closed = 0;
      await d.waitForLog((e) => e.msg === 'connection closed' && ++closed === 3, { since });
    }
    await assertWholeQuota(t, d, 3, 'after the rounds');
  },
);

test(
  'a stopped primary hangs no session: a failed login is answered from the worker copy, and slots freed meanwhile come back',
  LIMIT,
  async (t) => {
    const d = await cluster(t, 'maxConnectionsPerIp = 2\nauthFailureDelayMs = 1\n');
    const a = await connectToWorker(t, d);
    const b = await connectToWorker(t, d);
    let isStopped = true;
    process.kill(d.pid, 'SIGSTOP');
    t.after(() => {
      if (isStopped) process.kill(d.pid, 'SIGCONT');
    });
    // The worker asks the primary for the failure's delay, gets no answer and judges it alone.
    const since = d.logs.length;
    assert.equal(await a.client.command('USER u0'), '+OK send PASS');
    assert.match(await a.client.command('PASS wrong'), /^-ERR \[AUTH\]/);
    const failed = await d.waitForLog((e) => e.msg === 'login failed', { since });
    assert.equal(failed['failures'], 1);
    // Both connections end while the primary is stopped; their slots are given back once it runs.
    assert.match(await a.client.command('QUIT'), /^\+OK/);
    assert.match(await b.client.command('QUIT'), /^\+OK/);
    let closed = 0;
    await d.waitForLog((e) => e.msg === 'connection closed' && ++closed === 2, { since });
    process.kill(d.pid, 'SIGCONT');
    isStopped = false;
    await assertWholeQuota(t, d, 2, 'after the primary ran again');
  },
);

test(
  'a worker started in place of a dead one holds a correct login from a throttled address back at once',
  LIMIT,
  async (t) => {
    const d = await cluster(t, 'authFailureDelayMs = 1\nmaxAuthFailures = 10\n');
    const a = await connectToWorker(t, d);
    for (let i = 0; i < 2; i++) {
      assert.equal(await a.client.command('USER u0'), '+OK send PASS');
      assert.match(await a.client.command('PASS wrong'), /^-ERR \[AUTH\]/);
    }
    const listening = d.logs.filter((e) => e.msg === 'listening').map((e) => e['pid'] as number);
    const victim = listening.find((pid) => pid !== a.pid);
    assert.ok(victim !== undefined, `no other worker in ${JSON.stringify(listening)}`);
    const since = d.logs.length;
    process.kill(victim, 'SIGKILL');
    const replacement = (await d.waitForLog((e) => e.msg === 'listening', { since }))['pid'] as number;
    let b = await connectToWorker(t, d);
    while (b.pid !== replacement) b = await connectToWorker(t, d);
    const mark = d.logs.length;
    assert.match(await b.client.login('u1', 'pw-u1'), /^\+OK u1 has 1 message /);
    const held = await d.waitForLog((e) => e.msg === 'throttled login attempt', { since: mark });
    assert.deepEqual([held['pid'], held['failures']], [replacement, 2]);
  },
);
