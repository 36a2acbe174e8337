import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { Pop3Error, RespCode } from '../../src/errors.js';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import type { Maildrop, MailStore } from '../../src/mailstore/types.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { nodeScript } from '../helpers/node-script.js';
import { tempDir } from '../helpers/temp-dir.js';

const LOCK_FILE = '.poplar-lock';

const signal = (): AbortSignal => new AbortController().signal;

/** Opens through the MailStore interface, which takes the signal. */
const open = (store: MailStore, name = 'alice'): Promise<Maildrop> => store.open({ name }, signal());

function isInUse(error: unknown): boolean {
  assert.ok(error instanceof Pop3Error, `expected a Pop3Error, got ${String(error)}`);
  assert.equal(error.code, RespCode.inUse);
  return true;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A maildir for alice holding one message, and a store on its root. */
async function setup(
  t: TestContext,
): Promise<{ root: string; dir: string; lock: string; store: MaildirStore }> {
  const root = await tempDir(t);
  const { dir } = await buildMaildir(root, 'alice', [{ content: 'Subject: x\n\nbody\n' }]);
  return { root, dir, lock: join(dir, LOCK_FILE), store: new MaildirStore({ root }) };
}

/** Opens alice's maildrop, checks the snapshot and closes it: the lock could be taken. */
async function openAndClose(store: MaildirStore): Promise<void> {
  const drop = await open(store);
  try {
    assert.equal(drop.messages.length, 1);
  } finally {
    await drop.close();
  }
}

/** A child process and its stdout, line by line. */
class Child {
  readonly process: ChildProcessWithoutNullStreams;
  /** Resolves with the exit code and signal once the process has exited and its pipes are closed. */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #lines: string[] = [];
  #partial = '';
  #stderr = '';
  #wake: (() => void) | undefined;
  #isClosed = false;

  constructor(t: TestContext, command: string, args: readonly string[]) {
    this.process = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.process.stdout.setEncoding('utf8');
    this.process.stderr.setEncoding('utf8');
    this.process.stdout.on('data', (text: string) => {
      const parts = (this.#partial + text).split('\n');
      this.#partial = parts.pop() ?? '';
      this.#lines.push(...parts);
      this.#wake?.();
    });
    this.process.stderr.on('data', (text: string) => {
      this.#stderr += text;
    });
    this.closed = new Promise((resolve) => {
      this.process.once('close', (code, sig) => {
        this.#isClosed = true;
        this.#wake?.();
        resolve({ code, signal: sig });
      });
    });
    t.after(async () => {
      if (!this.#isClosed) this.process.kill('SIGKILL');
      await this.closed;
    });
  }

  /** The next line the child writes on stdout; rejects if it exits first. */
  async nextLine(): Promise<string> {
    for (;;) {
      const line = this.#lines.shift();
      if (line !== undefined) return line;
      if (this.#isClosed) throw new Error(`child exited without a line; stderr: ${this.#stderr}`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  get pid(): number {
    const { pid } = this.process;
    assert.ok(pid !== undefined, 'child has no pid');
    return pid;
  }
}

/** Runs test/fixtures/hold-maildrop on `root`; the caller waits for its first line. */
function holdMaildrop(t: TestContext, root: string): Child {
  const { command, args } = nodeScript('../fixtures/hold-maildrop.js', import.meta.url);
  return new Child(t, command, [...args, root, 'alice']);
}

/** A process that runs until its stdin closes. */
async function idleProcess(t: TestContext): Promise<Child> {
  const child = new Child(t, process.execPath, [
    '-e',
    'process.stdout.write("ready\\n"); process.stdin.resume();',
  ]);
  assert.equal(await child.nextLine(), 'ready');
  return child;
}

/** The pid of a process that has exited. */
async function deadPid(t: TestContext): Promise<number> {
  const child = new Child(t, process.execPath, ['-e', '']);
  const { code } = await child.closed;
  assert.equal(code, 0);
  return child.pid;
}

/** Field 22 of /proc/<pid>/stat: the process start time in clock ticks since boot. */
async function startTime(pid: number): Promise<string> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const start = fields[22 - 3];
  assert.ok(start !== undefined && /^[0-9]+$/.test(start), `no start time in ${text}`);
  return start;
}

describe('in one process', () => {
  test('a second open is refused with IN-USE until the first is closed', async (t) => {
    const { lock, store } = await setup(t);
    const drop = await open(store);
    assert.ok(await exists(lock), 'the lock file exists while the maildrop is open');
    const [pid, , host] = (await readFile(lock, 'utf8')).trim().split(' ');
    assert.equal(pid, String(process.pid));
    assert.equal(host, hostname());
    await assert.rejects(open(store), isInUse);
    await drop.close();
    assert.equal(await exists(lock), false, 'close removes the lock file');
    await openAndClose(store);
  });

  test('another store instance on the same root is refused too', async (t) => {
    const { root, store } = await setup(t);
    const drop = await open(store);
    await assert.rejects(open(new MaildirStore({ root })), isInUse);
    await drop.close();
    await openAndClose(new MaildirStore({ root }));
  });

  test('close twice is harmless and does not remove a lock taken since', async (t) => {
    const { lock, store } = await setup(t);
    const first = await open(store);
    await first.close();
    const second: Maildrop = await open(store);
    await first.close();
    assert.ok(await exists(lock), 'the second session still holds its lock');
    await assert.rejects(open(store), isInUse);
    await second.close();
    await openAndClose(store);
  });
});

describe('across processes', () => {
  test('a maildrop held by another process is IN-USE until that process closes it', async (t) => {
    const { root, lock, store } = await setup(t);
    const child = holdMaildrop(t, root);
    assert.equal(await child.nextLine(), 'locked');
    await assert.rejects(open(store), isInUse);
    await assert.rejects(open(new MaildirStore({ root })), isInUse);
    assert.equal((await readFile(lock, 'utf8')).split(' ')[0], String(child.pid));
    child.process.stdin.end();
    assert.equal(await child.nextLine(), 'released');
    assert.deepEqual(await child.closed, { code: 0, signal: null });
    assert.equal(await exists(lock), false);
    await openAndClose(store);
  });

  test('a maildrop held here is IN-USE for another process', async (t) => {
    const { root, store } = await setup(t);
    const drop = await open(store);
    const child = holdMaildrop(t, root);
    assert.equal(await child.nextLine(), 'error IN-USE');
    assert.deepEqual(await child.closed, { code: 1, signal: null });
    await drop.close();
  });

  test('the lock of a process killed with SIGKILL is recovered by the next open', async (t) => {
    const { root, dir, lock, store } = await setup(t);
    const child = holdMaildrop(t, root);
    assert.equal(await child.nextLine(), 'locked');
    child.process.kill('SIGKILL');
    assert.deepEqual(await child.closed, { code: null, signal: 'SIGKILL' });
    assert.equal((await readFile(lock, 'utf8')).split(' ')[0], String(child.pid), 'the lock is left behind');
    const drop = await open(store);
    assert.equal((await readFile(lock, 'utf8')).split(' ')[0], String(process.pid));
    await assert.rejects(open(store), isInUse);
    await drop.close();
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith(LOCK_FILE)),
      [],
      'no lock file and nothing moved aside is left',
    );
  });
});

describe('lock files left by others', () => {
  test('a lock naming a dead process is recovered', async (t) => {
    const { lock, store } = await setup(t);
    await writeFile(lock, `${await deadPid(t)} 12345 ${hostname()} 0123456789abcdef\n`);
    await openAndClose(store);
    assert.equal(await exists(lock), false);
  });

  test('a lock naming a live process with its own start time is respected', async (t) => {
    const { lock, store } = await setup(t);
    const other = await idleProcess(t);
    await writeFile(lock, `${other.pid} ${await startTime(other.pid)} ${hostname()} 0123456789abcdef\n`);
    await assert.rejects(open(store), isInUse);
    await assert.rejects(open(store), isInUse);
    assert.ok(await exists(lock), 'a refused open leaves the lock alone');
    // Once that process is gone, the lock is stale.
    other.process.stdin.end();
    assert.deepEqual(await other.closed, { code: 0, signal: null });
    await openAndClose(store);
  });

  test('a lock naming a live pid with another start time (a reused pid) is recovered', async (t) => {
    const { lock, store } = await setup(t);
    const other = await idleProcess(t);
    const wrongStart = String(Number(await startTime(other.pid)) + 1);
    await writeFile(lock, `${other.pid} ${wrongStart} ${hostname()} 0123456789abcdef\n`);
    await openAndClose(store);
  });

  test('a lock naming a live pid without a start time is respected', async (t) => {
    const { lock, store } = await setup(t);
    const other = await idleProcess(t);
    await writeFile(lock, `${other.pid} - ${hostname()} 0123456789abcdef\n`);
    await assert.rejects(open(store), isInUse);
  });

  test('a lock from another host is respected, even naming a pid that is dead here', async (t) => {
    const { lock, store } = await setup(t);
    await writeFile(lock, `${await deadPid(t)} 12345 other-host.invalid 0123456789abcdef\n`);
    await assert.rejects(open(store), isInUse);
  });

  for (const [name, content] of [
    ['empty', ''],
    ['text', 'garbage\n'],
    ['pid 0', `0 12345 ${hostname()} x\n`],
    ['negative pid', `-7 12345 ${hostname()} x\n`],
    ['binary', '\u0000\u00ff\u0001'],
  ] as const) {
    test(`a garbage lock file (${name}) is treated as stale`, async (t) => {
      const { lock, store } = await setup(t);
      await writeFile(lock, content, 'latin1');
      await openAndClose(store);
      assert.equal(await exists(lock), false);
    });
  }
});

describe('maildrop lock: UPDATE only while the session still holds it', () => {
  test('a session whose lock another session broke deletes nothing and marks nothing seen', async (t) => {
    const { dir, lock, store } = await setup(t);
    const drop = await open(store);
    t.after(() => drop.close());
    const uid = drop.messages[0]?.uid ?? '';
    const before = await readdir(join(dir, 'cur'));
    // Another host's session judged this lock stale, broke it and holds the maildrop now.
    await writeFile(lock, `4242 12345 another.host 0123456789abcdef\n`);
    await assert.rejects(drop.commit({ deleted: [uid], retrieved: [uid] }), (error: unknown) => {
      assert.ok(error instanceof Pop3Error);
      assert.equal(error.code, RespCode.sysTemp);
      return true;
    });
    assert.deepEqual(await readdir(join(dir, 'cur')), before);
  });

  test('with the lock still its own, the same commit deletes', async (t) => {
    const { dir, store } = await setup(t);
    const drop = await open(store);
    t.after(() => drop.close());
    await drop.commit({ deleted: [drop.messages[0]?.uid ?? ''], retrieved: [] });
    assert.deepEqual(await readdir(join(dir, 'cur')), []);
  });
});
