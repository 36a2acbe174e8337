// SIGHUP re-reads the users file in the primary and every worker and the admins file in the
// primary, changes the file watchers cannot see (the files are edited behind symbolic links), while
// a real client (Python's poplib) that logged in before the reload finishes its session after it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import { sendMonitorRequest, tokenBytes } from '../../src/monitor/client.js';
import { startDaemon, type RunningDaemon } from '../helpers/daemon.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';
import { monitorPort } from '../helpers/poplarctl.js';
import { tempDir } from '../helpers/temp-dir.js';
import { requireBinary } from '../interop/require-binary.js';

const LIMIT = { timeout: 120_000 };
const MESSAGE = 'Subject: hi\r\n\r\nRead after the reload.\r\n';
const OLD_TOKEN = 'Reload-Token-Old';
const NEW_TOKEN = 'Reload-Token-New';

/**
 * One poplib session in two halves: it logs in and prints STAT as a JSON line, waits for a line on
 * stdin, then retrieves and deletes message 1, quits, and prints the answers as a JSON line.
 */
const SESSION = String.raw`
import json, poplib, sys
pop = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=20)
pop.user(sys.argv[3])
pop.pass_(sys.argv[4])
print(json.dumps(pop.stat()), flush=True)
sys.stdin.readline()
resp, lines, octets = pop.retr(1)
dele = pop.dele(1)
quit = pop.quit()
print(json.dumps([resp.decode(), [l.decode() for l in lines], dele.decode(), quit.decode()]), flush=True)
`;

/** Python's poplib logged in as `user`; `next()` resolves to the next JSON line it prints. */
function poplibSession(t: TestContext, python: string, port: number, user: string, password: string) {
  const child = spawn(python, ['-c', SESSION, '127.0.0.1', String(port), user, password], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.after(() => child.kill());
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async next(): Promise<unknown> {
      const line: IteratorResult<string> = await lines.next();
      if (line.done === true) throw new Error(`poplib ended: ${stderr}`);
      return JSON.parse(line.value) as unknown;
    },
    goOn(): void {
      child.stdin.end('\n');
    },
  };
}

/** The monitor's answer to a GET with `token`: 'ok', or 'authFailed' for a token it does not know. */
async function monitorStatus(d: RunningDaemon, token: string): Promise<string> {
  const response = await sendMonitorRequest(
    { host: '127.0.0.1', port: monitorPort(d.started) },
    { type: 'get', token: tokenBytes(token), target: 'historicConnections', data: Buffer.alloc(0) },
  );
  return response.status;
}

/** Logs in on new connections until every pid in `pids` has served `user` once; each must accept. */
async function loginOnEvery(d: RunningDaemon, pids: readonly number[], user: string, password: string) {
  const seen = new Set<number>();
  for (let tries = 0; seen.size < pids.length; tries++) {
    assert.ok(tries < 20, `only workers ${[...seen].join(', ')} of ${pids.join(', ')} served ${user}`);
    const since = d.logs.length;
    const client = await Pop3TestClient.connect(d.port);
    const port = client.socket.localPort;
    assert.match(await client.tryLogin(user, password), /^\+OK/, user);
    client.close();
    const opened = await d.waitForLog((e) => e.msg === 'connection opened' && e['port'] === port, { since });
    seen.add(opened['pid'] as number);
  }
}

test(
  'SIGHUP re-reads the users file in every worker and the admins file, and a poplib session open across it goes on',
  LIMIT,
  async (t) => {
    const python = await requireBinary(t, 'python3');
    if (python === undefined) return;
    const cwd = await tempDir(t);
    const real = join(cwd, 'real');
    await mkdir(real);
    const admins = `ops:${await hashPassword(OLD_TOKEN, 'SSHA256')}\n`;
    await writeFile(join(real, 'users'), 'alice:{PLAIN}pw-alice\nbob:{PLAIN}pw-bob\n');
    await writeFile(join(real, 'admins'), admins, { mode: 0o600 });
    // The watchers watch the folder of the path given (cwd), where nothing changes.
    await symlink(join(real, 'users'), join(cwd, 'users'));
    await symlink(join(real, 'admins'), join(cwd, 'admins'));
    await writeFile(join(cwd, 'poplar.toml'), '[limits]\nauthFailureDelayMs = 0\n');
    await buildMaildir(join(cwd, 'mail'), 'alice', [{ content: MESSAGE }]);
    const d = await startDaemon(t, {
      cwd,
      args: [
        ...['--workers', '2', '--config', 'poplar.toml', '--users', 'users', '--admins', 'admins'],
        ...['-m', 'mail', '--listen', '127.0.0.1', '-p', '0'],
        // A worker logs its users loaded at debug level: the primary reports the change at info.
        ...['--log-level', 'debug'],
      ],
    });
    const workers = [...new Set(d.logs.filter((e) => e.msg === 'listening').map((e) => e['pid'] as number))];
    assert.equal(workers.length, 2);

    const session = poplibSession(t, python, d.port, 'alice', 'pw-alice');
    assert.deepEqual(await session.next(), [1, MESSAGE.length]);

    // alice's password changes under her open session, bob's too, carol is new, ops2 a new admin.
    await writeFile(
      join(real, 'users'),
      'alice:{PLAIN}pw-alice-2\nbob:{PLAIN}pw-bob-2\ncarol:{PLAIN}pw-carol\n',
    );
    await writeFile(join(real, 'admins'), `${admins}ops2:${await hashPassword(NEW_TOKEN, 'SSHA256')}\n`);
    const before = await Pop3TestClient.connect(d.port);
    assert.match(await before.tryLogin('carol', 'pw-carol'), /^-ERR \[AUTH\]/, 'not seen before SIGHUP');
    before.close();

    const since = d.logs.length;
    d.child.kill('SIGHUP');
    for (const pid of [d.pid, ...workers])
      await d.waitForLog((e) => e.msg === 'users loaded' && e['users'] === 3 && e['pid'] === pid, { since });
    await d.waitForLog((e) => e.msg === 'admins loaded' && e['admins'] === 2, { since });
    await d.waitForLog((e) => e.msg === 'configuration reloaded', { since });

    await loginOnEvery(d, workers, 'carol', 'pw-carol');
    await loginOnEvery(d, workers, 'bob', 'pw-bob-2');
    assert.equal(await monitorStatus(d, NEW_TOKEN), 'ok');
    assert.equal(await monitorStatus(d, OLD_TOKEN), 'ok');

    // The session that logged in before the reload reads and deletes its message and quits.
    session.goOn();
    const [retr, lines, dele, quit] = (await session.next()) as [string, string[], string, string];
    assert.match(retr, /^\+OK/);
    assert.deepEqual(lines, ['Subject: hi', '', 'Read after the reload.']);
    assert.match(dele, /^\+OK/);
    assert.match(quit, /^\+OK/);
    assert.equal(await d.stop(), 0);
  },
);
