import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isErrno, Pop3Error, RespCode } from '../../errors.js';
import { inUseError, type MaildropKey, type MaildropLease, type MaildropLocks } from '../locks.js';
import { threadPoolFs, type MaildirFs } from './fs.js';

export const LOCK_FILE = '.poplar-lock';

/** Lock paths held by this process: a second session of the same server is refused without touching the disk. */
const heldHere = new Set<string>();
/** Contents of the locks this process holds: a lock file naming this process but none of these was left behind. */
const heldContents = new Set<string>();

/** A temporary or moved-aside lock file this old is a leftover whatever it holds. */
const LEFTOVER_AGE_MS = 10 * 60_000;

let ownStartTime: string | undefined;
/** This machine's name, as locks record it: read once, not with a uname(2) per login. */
const ownHost = hostname();

/**
 * State and start time (in clock ticks since boot) of a process (Linux), to tell a live owner
 * from a reused pid, or from a zombie.
 */
async function processStat(
  pid: number,
  fs: MaildirFs,
): Promise<{ state: string; start: string } | undefined> {
  try {
    const stat = await fs.readText(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [state, start] = [fields[0], fields[19]];
    return state === undefined || start === undefined ? undefined : { state, start };
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return isErrno(error, 'EPERM');
  }
}

/** Whether the process `pid` of this host, started at `start`, has exited (or the pid was reused). */
async function isGone(pid: number, start: string | undefined, fs: MaildirFs): Promise<boolean> {
  if (!isAlive(pid)) return true;
  const actual = await processStat(pid, fs);
  if (actual === undefined) return false;
  // A zombie has exited: it holds nothing (a killed daemon's worker not reaped yet).
  if (actual.state === 'Z' || actual.state === 'X') return true;
  return start !== undefined && start !== '-' && actual.start !== start;
}

const isOwn = (pid: number, start: string | undefined): boolean =>
  pid === process.pid && start === ownStartTime;

/** Whether the lock described by `content` was left by a process that no longer holds it. */
async function isStale(content: string, fs: MaildirFs): Promise<boolean> {
  const [pidText, start, host] = content.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return true; // unreadable: a crash while writing it
  if (host !== ownHost) return false; // another machine's process: cannot tell, assume held
  // Ours: held only if a session of this process holds exactly this lock (a release that could
  // not remove the file, on a read-only file system say, leaves it behind).
  if (isOwn(pid, start)) return !heldContents.has(content);
  return isGone(pid, start, fs);
}

/** A lock is a regular file or, made on a full disk, a symbolic link whose target is the content. */
async function readLock(path: string, fs: MaildirFs): Promise<string> {
  // lstat first, not a readlink that fails with EINVAL: a failed call costs an exception.
  for (let attempt = 0; ; attempt++) {
    const isLink = (await fs.lstat(path)).isSymbolicLink();
    try {
      return await (isLink ? fs.readlink(path) : fs.readText(path));
    } catch (error) {
      // Replaced between the two calls (a file by a link, or the reverse): look again, once.
      if (attempt > 0 || !isErrno(error, 'ENOENT', 'EINVAL')) throw error;
    }
  }
}

/**
 * The maildrop lock as a file in the maildir, good across the processes of one machine: a file
 * created with O_EXCL that names its owner (pid, process start time, host). A lock whose owner is
 * dead (killed with -9, say) is recovered by the next session, which also removes what a crash
 * left while taking or recovering a lock. `key.path` is the maildir.
 */
export class FileMaildropLocks implements MaildropLocks {
  readonly #fs: MaildirFs;

  constructor(fs: MaildirFs) {
    this.#fs = fs;
  }

  async acquire(key: MaildropKey): Promise<MaildropLease> {
    const lease = await FileLease.acquire(key.path, this.#fs);
    const names = await this.#fs.readdir(key.path).catch(() => [] as string[]);
    await removeLockLeftovers(key.path, names, this.#fs);
    return lease;
  }
}

/** One lock file, held. */
class FileLease implements MaildropLease {
  readonly #path: string;
  readonly #content: string;
  readonly #fs: MaildirFs;
  #isHeld = true;

  private constructor(path: string, content: string, fs: MaildirFs) {
    this.#path = path;
    this.#content = content;
    this.#fs = fs;
    heldContents.add(content);
  }

  /**
   * Takes the lock of the maildrop in `dir`. Rejects with `[IN-USE]` when another session holds
   * it, and with `[SYS/TEMP]` when the file system does not let it be taken (read-only, say).
   */
  static async acquire(dir: string, fs: MaildirFs): Promise<FileLease> {
    const path = join(dir, LOCK_FILE);
    if (heldHere.has(path)) throw inUseError();
    heldHere.add(path);
    try {
      ownStartTime ??= (await processStat(process.pid, fs))?.start ?? '-';
      const content = `${process.pid} ${ownStartTime} ${ownHost} ${randomBytes(8).toString('hex')}\n`;
      for (let attempt = 0; attempt < 3; attempt++) {
        if (await createExclusive(path, content, fs)) return new FileLease(path, content, fs);
        let existing: string;
        try {
          existing = await readLock(path, fs);
        } catch (error) {
          if (isErrno(error, 'ENOENT')) continue; // released meanwhile
          throw error;
        }
        if (!(await isStale(existing, fs))) throw inUseError();
        await removeStale(path, existing, fs);
      }
      throw inUseError();
    } catch (error) {
      heldHere.delete(path);
      if (error instanceof Pop3Error) throw error;
      throw new Pop3Error('mailbox unavailable, try again later', RespCode.sysTemp, { cause: error });
    }
  }

  /**
   * No other session holds the maildrop: the lock file still holds what this lease wrote, or is
   * gone with no successor (the whole maildir removed under the session, say), in which case the
   * session's deletions concern no one else. A lock file with another content means another
   * session broke this one as stale and may be working on the maildrop now.
   */
  async confirm(): Promise<void> {
    if (!this.#isHeld) throw new Pop3Error('maildrop lock was released', RespCode.sysTemp);
    let current: string;
    try {
      current = await readLock(this.#path, this.#fs);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return;
      throw new Pop3Error('mailbox unavailable, try again later', RespCode.sysTemp, { cause: error });
    }
    if (current !== this.#content) throw new Pop3Error('maildrop lock lost', RespCode.sysTemp);
  }

  /** Removes the lock file if it is still ours. */
  async release(): Promise<void> {
    if (!this.#isHeld) return;
    this.#isHeld = false;
    try {
      if ((await readLock(this.#path, this.#fs)) === this.#content) await this.#fs.unlink(this.#path);
    } catch (error) {
      // Already gone: nothing to release. Or it cannot be removed now (a read-only file system):
      // an acquire in this process finds it stale, but another process (another worker) sees a
      // live owner, so it is removed as soon as it can be.
      if (!isErrno(error, 'ENOENT')) retryRelease(this.#path, this.#content);
    } finally {
      heldContents.delete(this.#content);
      heldHere.delete(this.#path);
    }
  }
}

/** Lock files whose release failed, by path, with their content: removed by a retry timer. */
const unreleased = new Map<string, string>();
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;
let retryMs = FIRST_RETRY_MS;
let retryTimer: NodeJS.Timeout | undefined;

function retryRelease(path: string, content: string): void {
  unreleased.set(path, content);
  retryTimer ??= setTimeout(() => void retryReleases(), retryMs).unref();
}

async function retryReleases(): Promise<void> {
  for (const [path, content] of unreleased) {
    try {
      // A session of this process taking the lock again finds this one stale and replaces it.
      const current = heldHere.has(path) ? undefined : await readLock(path, threadPoolFs);
      if (current === content && !heldHere.has(path)) await threadPoolFs.unlink(path);
      unreleased.delete(path);
    } catch (error) {
      // Still read-only, say: next time.
      if (isErrno(error, 'ENOENT')) unreleased.delete(path);
    }
  }
  retryMs = unreleased.size === 0 ? FIRST_RETRY_MS : Math.min(retryMs * 2, MAX_RETRY_MS);
  retryTimer = unreleased.size === 0 ? undefined : setTimeout(() => void retryReleases(), retryMs).unref();
}

/**
 * Creates the lock file with its whole content at once: written to a temporary name, then
 * hard-linked to the lock's name, which fails if a lock exists. Another process can therefore
 * never see a lock file that is empty or half written (and take it for stale).
 */
async function createExclusive(path: string, content: string, fs: MaildirFs): Promise<boolean> {
  // The name says whose it is: a process killed before writing the content leaves an empty file.
  const tmp = `${path}.${process.pid}_${ownStartTime ?? '-'}_${randomBytes(6).toString('hex')}_${ownHost}.tmp`;
  try {
    await fs.writeText(tmp, content, true);
  } catch (error) {
    await fs.unlink(tmp).catch(() => undefined);
    if (!isErrno(error, 'ENOSPC', 'EDQUOT')) throw error;
    // A full disk: a symbolic link needs no data block for a short target (ext4, tmpfs, xfs keep
    // it in the inode), so the maildrop can still be opened, and mail deleted to free space.
    return createExclusiveLink(path, content, fs);
  }
  try {
    await fs.link(tmp, path);
    return true;
  } catch (error) {
    if (isErrno(error, 'EEXIST')) return false;
    throw error;
  } finally {
    await fs.unlink(tmp).catch(() => undefined);
  }
}

async function createExclusiveLink(path: string, content: string, fs: MaildirFs): Promise<boolean> {
  try {
    await fs.symlink(content, path);
    return true;
  } catch (error) {
    if (isErrno(error, 'EEXIST')) return false;
    throw error;
  }
}

/**
 * Moves a stale lock aside atomically. If what was moved turns out not to be the stale lock (its
 * owner's successor took the lock in between), it is put back.
 */
async function removeStale(path: string, staleContent: string, fs: MaildirFs): Promise<void> {
  const aside = `${path}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await fs.rename(path, aside);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return;
    throw error;
  }
  const moved = await readLock(aside, fs).catch(() => staleContent);
  if (moved !== staleContent) {
    await fs.link(aside, path).catch(() => undefined);
  }
  await fs.unlink(aside).catch(() => undefined);
}

/**
 * Removes what a process killed while taking or recovering the lock left behind: temporary lock
 * files (named after their owner) and locks moved aside (holding their owner's lock content)
 * whose owner is gone, or which are old. `names` are the maildir's entries. Call it with the lock
 * held, so that no session of this process is making one; failures are ignored (the files are
 * only clutter).
 */
async function removeLockLeftovers(dir: string, names: readonly string[], fs: MaildirFs): Promise<void> {
  for (const name of names) {
    if (!name.startsWith(`${LOCK_FILE}.`)) continue;
    const path = join(dir, name);
    try {
      if (await isLeftover(name, path, fs)) await fs.unlink(path);
    } catch {
      // Gone meanwhile, or cannot be removed: left for the next session.
    }
  }
}

async function isLeftover(name: string, path: string, fs: MaildirFs): Promise<boolean> {
  const rest = name.slice(LOCK_FILE.length + 1);
  if (rest.endsWith('.tmp')) {
    const [pidText, start, , ...host] = rest.slice(0, -'.tmp'.length).split('_');
    const pid = Number(pidText);
    if (host.join('_') === ownHost && Number.isInteger(pid) && pid > 0) {
      return isOwn(pid, start) || (await isGone(pid, start, fs));
    }
  } else if (rest.startsWith('stale-')) {
    const content = await readLock(path, fs);
    if (content.endsWith('\n') && content.trim().split(' ').length === 4) return isStale(content, fs);
  } else {
    return false;
  }
  // Another host's, or not named as this version names them: only its age tells.
  return Date.now() - (await fs.lstat(path)).mtimeMs > LEFTOVER_AGE_MS;
}
