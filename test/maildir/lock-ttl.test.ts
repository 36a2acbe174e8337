// The lock file's TTL: a holder refreshes it, a lock not refreshed for the TTL is stale whatever
// host or process wrote it (security probe 2026-12, finding 10), breaking one is race-free, and a
// holder that finds its lock broken has lost the maildrop.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, test, type TestContext } from 'node:test';
import { Pop3Error, RespCode } from '../../src/errors.js';
import { canBeLost } from '../../src/mailstore/locks.js';
import { blockingFs, threadPoolFs, type MaildirFs } from '../../src/mailstore/maildir/fs.js';
import {
  createExclusive,
  LOCK_FILE,
  observeLock,
  removeIfSame,
} from '../../src/mailstore/maildir/lock-files.js';
import { FileMaildropLocks } from '../../src/mailstore/maildir/lock.js';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import { canLoseMaildrop } from '../../src/mailstore/types.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { nodeScript } from '../helpers/node-script.js';
import { recordingLogger } from '../helpers/recording-logger.js';
import { tempDir } from '../helpers/temp-dir.js';

/** Finding 10's lock: a container killed with -9, restarted under a new host name. */
const FOREIGN_LOCK = '4242 12345 old-container-hostname 0011223344556677\n';
const TWO_DAYS_S = 2 * 24 * 3600;

async function setup(t: TestContext, lockTtlMs?: number) {
  const root = await tempDir(t);
  const { dir } = await buildMaildir(root, 'alice', [{ content: 'Subject: x\n\nbody\n' }]);
  const logger = recordingLogger();
  const store = new MaildirStore({ root, logger, ...(lockTtlMs === undefined ? {} : { lockTtlMs }) });
  return { root, dir, lock: join(dir, LOCK_FILE), store, logger };
}

/** Sets a file's mtime `seconds` back. */
async function age(path: string, seconds: number): Promise<void> {
  const then = new Date(Date.now() - seconds * 1000);
  await utimes(path, then, then);
}

const open = (store: MaildirStore) => store.open({ name: 'alice' });

function isCoded(code: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof Pop3Error, `expected a Pop3Error, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  };
}

/** Polls `check` every 10 ms until it holds, for at most `ms`. */
async function until(check: () => Promise<boolean> | boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < end, `timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('a lock not refreshed for the TTL is stale, whoever wrote it', () => {
  test("finding 10: another host name's lock, 2 days old, is broken at login and logged", async (t) => {
    const { dir, lock, store, logger } = await setup(t);
    await writeFile(lock, FOREIGN_LOCK);
    await age(lock, TWO_DAYS_S);
    const drop = await open(store);
    assert.equal((await readFile(lock, 'utf8')).split(' ')[0], String(process.pid));
    await drop.close();
    const broken = logger.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const line = broken.find((l) => l['message'] === 'stale maildrop lock broken');
    assert.ok(line, `no line about the broken lock in ${logger.lines.join('\n')}`);
    assert.deepEqual(line['owner'], { pid: '4242', host: 'old-container-hostname' });
    assert.equal(line['reason'], 'expired');
    assert.ok(Math.abs(Number(line['ageS']) - TWO_DAYS_S) < 60, `ageS ${String(line['ageS'])}`);
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith(LOCK_FILE)),
      [],
    );
  });

  test('a fresh lock of another host is held (and logged with its owner) until it ages past the TTL', async (t) => {
    const { lock, store, logger } = await setup(t, 5000);
    await writeFile(lock, FOREIGN_LOCK);
    await assert.rejects(open(store), isCoded(RespCode.inUse));
    assert.ok(
      logger.lines.some(
        (l) => l.includes('maildrop lock held by another session') && l.includes('old-container-hostname'),
      ),
      logger.lines.join('\n'),
    );
    await age(lock, 4);
    await assert.rejects(open(store), isCoded(RespCode.inUse));
    await age(lock, 6);
    await (await open(store)).close();
  });

  test('a lock of this host naming a live process without a start time expires too', async (t) => {
    const { lock, store } = await setup(t);
    await writeFile(lock, `1 - ${hostname()} 0011223344556677\n`);
    await assert.rejects(open(store), isCoded(RespCode.inUse));
    await age(lock, 31);
    await (await open(store)).close();
  });
});

describe('the holder refreshes its lock', () => {
  for (const fs of [blockingFs, threadPoolFs]) {
    test(`the lock's mtime is set to now every third of the TTL (blocking ${String(fs.isBlocking)})`, async (t) => {
      const root = await tempDir(t);
      const { dir } = await buildMaildir(root, 'alice', []);
      const lease = await new FileMaildropLocks(fs, { ttlMs: 300 }).acquire({ user: 'alice', path: dir });
      t.after(() => lease.release());
      const lock = join(dir, LOCK_FILE);
      await age(lock, 3600);
      await until(async () => Date.now() - (await stat(lock)).mtimeMs < 60_000, 'the lock is refreshed');
      await lease.confirm();
    });
  }

  test('a holder whose lock another node broke has lost it: lost aborts, nothing deleted, its release spares the new lock', async (t) => {
    const { dir, lock, store } = await setup(t, 300);
    const drop = await open(store);
    t.after(() => drop.close());
    assert.ok(canLoseMaildrop(drop));
    const before = await readdir(join(dir, 'cur'));
    // Another node found it stale (this process stalled, say), broke it and took the maildrop.
    await writeFile(lock, `4242 12345 other.node 0123456789abcdef\n`);
    await until(() => drop.lost.aborted, 'the refresh finds the lock lost');
    const uid = drop.messages[0]?.uid ?? '';
    await assert.rejects(drop.commit({ deleted: [uid], retrieved: [uid] }), /maildrop lock lost/);
    assert.deepEqual(await readdir(join(dir, 'cur')), before);
    await drop.close();
    assert.equal(await readFile(lock, 'utf8'), `4242 12345 other.node 0123456789abcdef\n`);
  });

  test('a lock file removed under its holder is lost too', async (t) => {
    const root = await tempDir(t);
    const { dir } = await buildMaildir(root, 'alice', []);
    const lease = await new FileMaildropLocks(blockingFs, { ttlMs: 60_000 }).acquire({
      user: 'alice',
      path: dir,
    });
    t.after(() => lease.release());
    assert.ok(canBeLost(lease));
    await unlink(join(dir, LOCK_FILE));
    await assert.rejects(lease.confirm(), /maildrop lock lost/);
    assert.equal(lease.lost.aborted, true);
  });

  test('the refresh timer keeps no process alive: a process holding a maildrop exits when it has nothing else to do', async (t) => {
    const root = await tempDir(t);
    await buildMaildir(root, 'alice', []);
    const store = fileURLToPath(new URL('../../src/mailstore/maildir/store.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { MaildirStore } = await import(${JSON.stringify(store)});
         await new MaildirStore({ root: process.argv[1], lockTtlMs: 300 }).open({ name: 'alice' }, new AbortController().signal);
         console.log('locked');`,
        root,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
    assert.equal(line, 'locked');
    // Bounded: a timer that keeps the process alive would keep it forever.
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const exit = await once(child, 'exit');
    clearTimeout(killer);
    assert.deepEqual(exit, [0, null], 'the process exits on its own, not killed after 10 s');
  });
});

describe('breaking a stale lock is race-free', () => {
  async function staleLock(t: TestContext): Promise<{ lock: string; fs: MaildirFs }> {
    const dir = await tempDir(t);
    const lock = join(dir, LOCK_FILE);
    await writeFile(lock, FOREIGN_LOCK);
    await age(lock, TWO_DAYS_S);
    return { lock, fs: blockingFs };
  }

  test("node B, which read the stale lock, does not break node A's fresh lock taken since", async (t) => {
    const { lock, fs } = await staleLock(t);
    const seenByA = await observeLock(lock, fs);
    const seenByB = await observeLock(lock, fs);
    assert.equal(await removeIfSame(lock, seenByA, fs), true);
    const fresh = `${process.pid} 1 node-a 00000000000000aa\n`;
    assert.equal(await createExclusive(lock, fresh, fs), true);
    assert.equal(await removeIfSame(lock, seenByB, fs), false);
    assert.equal(await readFile(lock, 'utf8'), fresh);
    assert.deepEqual((await readdir(join(lock, '..'))).sort(), [LOCK_FILE]);
  });

  test('a lock refreshed after it was judged stale is not broken', async (t) => {
    const { lock, fs } = await staleLock(t);
    const judged = await observeLock(lock, fs);
    await fs.touch(lock);
    assert.equal(await removeIfSame(lock, judged, fs), false);
    assert.equal(await readFile(lock, 'utf8'), FOREIGN_LOCK);
  });

  test('two breakers at once: exactly one removes it', async (t) => {
    for (let round = 0; round < 20; round++) {
      const { lock, fs } = await staleLock(t);
      const seen = await observeLock(lock, fs);
      const results = await Promise.all([
        removeIfSame(lock, seen, threadPoolFs),
        removeIfSame(lock, seen, fs),
      ]);
      assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${String(results)}`);
    }
  });

  test('two processes logging in on one stale lock: one gets the maildrop, the other IN-USE', async (t) => {
    const { root, lock } = await setup(t);
    for (let round = 0; round < 5; round++) {
      await writeFile(lock, FOREIGN_LOCK);
      await age(lock, TWO_DAYS_S);
      const children = [holdMaildrop(t, root), holdMaildrop(t, root)];
      const first = await Promise.all(children.map((c) => c.line));
      assert.deepEqual(first.sort(), ['error IN-USE', 'locked'], `round ${round}`);
      for (const c of children) c.process.stdin.end();
      await Promise.all(children.map((c) => c.closed));
    }
  });
});

function holdMaildrop(t: TestContext, root: string) {
  const { command, args } = nodeScript('../fixtures/hold-maildrop.js', import.meta.url);
  const child = spawn(command, [...args, root, 'alice'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const closed = once(child, 'close');
  child.stdin.on('error', () => undefined); // the refused one has exited already
  t.after(() => child.kill('SIGKILL'));
  const line = once(createInterface({ input: child.stdout }), 'line').then(([l]) => l as string);
  return { process: child, line, closed };
}
