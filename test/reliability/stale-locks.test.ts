// What a killed process leaves next to a maildrop lock: the lock itself (owner dead, or a zombie
// nobody reaped yet), a temporary lock file written half-way, a stale lock moved aside. The next
// open recovers the lock and removes the leftovers of dead owners, and only those.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { LOCK_FILE } from '../../src/mailstore/maildir/lock.js';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { tempDir } from '../helpers/temp-dir.js';

async function setUp(t: TestContext): Promise<{ dir: string; store: MaildirStore }> {
  const root = await tempDir(t);
  const { dir } = await buildMaildir(root, 'alice', [{ content: 'Subject: x\n\nbody\n' }]);
  return { dir, store: new MaildirStore({ root }) };
}

/** Opens and closes alice's maildrop: rejects if the lock cannot be taken. */
async function openAndClose(store: MaildirStore): Promise<void> {
  const drop = await store.open({ name: 'alice' });
  assert.equal(drop.messages.length, 1);
  await drop.close();
}

/** State and start time of a process, from /proc. */
async function procStat(pid: number): Promise<{ state: string; start: string }> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '', start: fields[19] ?? '' };
}

/** The pid of a process that has exited (and was reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid ?? 0;
}

const lockContent = (pid: number, start: string, host = hostname()): string =>
  `${pid} ${start} ${host} 0123456789abcdef\n`;

test('a lock whose owner is a zombie (exited, not reaped yet) is recovered', async (t) => {
  const { dir, store } = await setUp(t);
  // `sleep 0` exits at once; its parent then execs `sleep`, which never reaps it.
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 60'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  t.after(() => parent.kill('SIGKILL'));
  const [line] = (await once(createInterface({ input: parent.stdout }), 'line')) as [string];
  const zombie = Number(line);
  // No event says a child of another process has exited: look until it has (or give up).
  for (let tries = 0; (await procStat(zombie)).state !== 'Z'; tries++) {
    assert.ok(tries < 500, `process ${zombie} did not become a zombie`);
    await delay(10);
  }
  await writeFile(join(dir, LOCK_FILE), lockContent(zombie, (await procStat(zombie)).start));
  await openAndClose(store);
  assert.deepEqual(
    (await readdir(dir)).filter((n) => n.startsWith(LOCK_FILE)),
    [],
  );
});

test('leftovers of dead lock takers are removed by the next open; those of live ones are kept', async (t) => {
  const { dir, store } = await setUp(t);
  const dead = await deadPid();
  const live = await procStat(process.ppid);
  const host = hostname();
  const files: Record<string, { content: string; isLeftover: boolean; isOld?: boolean }> = {
    // Killed after creating its temporary file, before writing into it.
    [`${LOCK_FILE}.${dead}_12345_a1b2c3d4e5f6_${host}.tmp`]: { content: '', isLeftover: true },
    // Killed after writing it.
    [`${LOCK_FILE}.${dead}_12345_a1b2c3d4e5f7_${host}.tmp`]: {
      content: lockContent(dead, '12345'),
      isLeftover: true,
    },
    // Killed while recovering a stale lock, after moving it aside.
    [`${LOCK_FILE}.stale-0a1b2c3d4e5f`]: { content: lockContent(dead, '12345'), isLeftover: true },
    // A live process taking the lock right now.
    [`${LOCK_FILE}.${process.ppid}_${live.start}_a1b2c3d4e5f8_${host}.tmp`]: {
      content: '',
      isLeftover: false,
    },
    // Another machine's (a shared file system): cannot tell, unless it is old.
    [`${LOCK_FILE}.${dead}_12345_a1b2c3d4e5f9_other.invalid.tmp`]: { content: '', isLeftover: false },
    [`${LOCK_FILE}.${dead}_12345_a1b2c3d4e5fa_other.invalid.tmp`]: {
      content: '',
      isLeftover: true,
      isOld: true,
    },
    // Named as an older version named them: only its age tells.
    [`${LOCK_FILE}.c0ffee123456.tmp`]: { content: '', isLeftover: false },
    [`${LOCK_FILE}.c0ffee123457.tmp`]: { content: '', isLeftover: true, isOld: true },
  };
  for (const [name, { content, isOld }] of Object.entries(files)) {
    await writeFile(join(dir, name), content);
    if (isOld === true) await utimes(join(dir, name), new Date(0), new Date(0));
  }
  await openAndClose(store);
  const kept = Object.entries(files)
    .filter(([, f]) => !f.isLeftover)
    .map(([name]) => name);
  assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith(LOCK_FILE)).sort(), kept.sort());
  // Those kept do not stop anyone.
  await openAndClose(store);
});
