import { randomBytes } from 'node:crypto';
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Pop3Error, RespCode } from '../../errors.js';

export const LOCK_FILE = '.poplar-lock';

/** Lock paths held by this process: a second session of the same server is refused without touching the disk. */
const heldHere = new Set<string>();

let ownStartTime: string | undefined;

/** Start time of a process in clock ticks since boot (Linux), to tell a live owner from a reused pid. */
async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the lock described by `content` was left by a process that no longer runs. */
async function isStale(content: string): Promise<boolean> {
  const [pidText, start, host] = content.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return true; // unreadable: a crash while writing it
  if (host !== hostname()) return false; // another machine's process: cannot tell, assume held
  if (pid === process.pid && start === ownStartTime) return false; // ours; `heldHere` decides
  if (!isAlive(pid)) return true;
  const actual = await processStartTime(pid);
  return actual !== undefined && start !== undefined && start !== '-' && actual !== start;
}

const inUse = (): Pop3Error => new Pop3Error('maildrop is in use by another session', RespCode.inUse);

/**
 * The exclusive lock on one maildrop (RFC 1939 section 8), good across processes: a file created
 * with O_EXCL that names its owner (pid, process start time, host). A lock whose owner is dead
 * (killed with -9, say) is recovered by the next session.
 */
export class MaildropLock {
  readonly #path: string;
  readonly #content: string;
  #isHeld = true;

  private constructor(path: string, content: string) {
    this.#path = path;
    this.#content = content;
  }

  static async acquire(dir: string): Promise<MaildropLock> {
    const path = join(dir, LOCK_FILE);
    if (heldHere.has(path)) throw inUse();
    heldHere.add(path);
    try {
      ownStartTime ??= (await processStartTime(process.pid)) ?? '-';
      const content = `${process.pid} ${ownStartTime} ${hostname()} ${randomBytes(8).toString('hex')}\n`;
      for (let attempt = 0; attempt < 3; attempt++) {
        if (await createExclusive(path, content)) return new MaildropLock(path, content);
        let existing: string;
        try {
          existing = await readFile(path, 'utf8');
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
          throw error;
        }
        if (!(await isStale(existing))) throw inUse();
        await removeStale(path, existing);
      }
      throw inUse();
    } catch (error) {
      heldHere.delete(path);
      throw error;
    }
  }

  /** Removes the lock file if it is still ours. */
  async release(): Promise<void> {
    if (!this.#isHeld) return;
    this.#isHeld = false;
    try {
      if ((await readFile(this.#path, 'utf8')) === this.#content) await unlink(this.#path);
    } catch {
      // Already gone: nothing to release.
    } finally {
      heldHere.delete(this.#path);
    }
  }
}

/**
 * Creates the lock file with its whole content at once: written to a temporary name, then
 * hard-linked to the lock's name, which fails if a lock exists. Another process can therefore
 * never see a lock file that is empty or half written (and take it for stale).
 */
async function createExclusive(path: string, content: string): Promise<boolean> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/**
 * Moves a stale lock aside atomically. If what was moved turns out not to be the stale lock (its
 * owner's successor took the lock in between), it is put back.
 */
async function removeStale(path: string, staleContent: string): Promise<void> {
  const aside = `${path}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const moved = await readFile(aside, 'utf8').catch(() => staleContent);
  if (moved !== staleContent) {
    await link(aside, path).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
}
