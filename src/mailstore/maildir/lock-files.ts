import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isErrno } from '../../errors.js';
import type { MaildirFs } from './fs.js';

/**
 * The files of the maildrop lock (see `lock.ts`): what a lock file says, when it is stale, how it
 * is created whole and how a stale one is broken without breaking a fresh one by mistake.
 */

export const LOCK_FILE = '.poplar-lock';

/** A temporary or moved-aside lock file this old is a leftover whatever it holds. */
const LEFTOVER_AGE_MS = 10 * 60_000;

/** Contents of the locks this process holds: a lock file naming this process but none of these was left behind. */
export const heldContents = new Set<string>();

let ownStartTime: string | undefined;
/** This machine's name, as locks record it: read once, not with a uname(2) per login. */
export const ownHost = hostname();

/** The content of a new lock of this process: pid, process start time, host, a random token. */
export async function newLockContent(fs: MaildirFs): Promise<string> {
  ownStartTime ??= (await processStat(process.pid, fs))?.start ?? '-';
  return `${process.pid} ${ownStartTime} ${ownHost} ${randomBytes(8).toString('hex')}\n`;
}

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

/** A lock file as it was read: what it says, which file it was and when its holder last refreshed it. */
export interface ObservedLock {
  readonly content: string;
  readonly ino: number;
  readonly mtimeMs: number;
}

/**
 * Reads a lock: a regular file or, made on a full disk, a symbolic link whose target is the
 * content. The file is opened and its status taken from the descriptor, so that on NFS the mtime
 * is revalidated (close-to-open), never an attribute cached for `actimeo` seconds.
 */
export async function observeLock(path: string, fs: MaildirFs): Promise<ObservedLock> {
  // lstat first, not a readlink that fails with EINVAL: a failed call costs an exception.
  for (let attempt = 0; ; attempt++) {
    try {
      const stats = await fs.lstat(path);
      if (stats.isSymbolicLink()) {
        return { content: await fs.readlink(path), ino: stats.ino, mtimeMs: stats.mtimeMs };
      }
      const read = await fs.readTextStat(path);
      return { content: read.text, ino: read.stats.ino, mtimeMs: read.stats.mtimeMs };
    } catch (error) {
      // Replaced between the two calls (a file by a link, or the reverse): look again, once.
      if (attempt > 0 || !isErrno(error, 'ENOENT', 'EINVAL')) throw error;
    }
  }
}

/** Why a lock no longer holds its maildrop, or undefined while it does. */
export type Staleness = 'expired' | 'owner gone' | 'unreadable';

/** The owner a lock names, for log lines (a lock file is anyone's: bounded, printable). */
export function ownerOf(content: string): { pid: string; host: string } {
  const [pid = '', , host = ''] = content.trim().split(' ');
  const clean = (text: string): string => text.replace(/[^\x21-\x7e]/g, '?').slice(0, 64);
  return { pid: clean(pid), host: clean(host) };
}

/**
 * Whether the lock is stale: not refreshed for `ttlMs` whatever host or process wrote it (its
 * holder died on another machine, or in a container since replaced under a new host name), or
 * naming a process of this host that is gone, or unreadable (no Poplar writes such a lock).
 */
export async function whyStale(
  lock: ObservedLock,
  ttlMs: number,
  fs: MaildirFs,
): Promise<Staleness | undefined> {
  const [pidText, start, host] = lock.content.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return 'unreadable';
  if (Date.now() - lock.mtimeMs > ttlMs) return 'expired';
  if (host !== ownHost) return undefined; // another machine's, and refreshed lately: held
  // Ours: held only if a session of this process holds exactly this lock (a release that could
  // not remove the file, on a read-only file system say, leaves it behind).
  if (isOwn(pid, start)) return heldContents.has(lock.content) ? undefined : 'owner gone';
  return (await isGone(pid, start, fs)) ? 'owner gone' : undefined;
}

/**
 * Creates the lock file with its whole content at once: written to a temporary name, then
 * hard-linked to the lock's name, which fails if a lock exists. Another process can therefore
 * never see a lock file that is empty or half written (and take it for stale).
 */
export async function createExclusive(path: string, content: string, fs: MaildirFs): Promise<boolean> {
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

const isSameLock = (a: ObservedLock, b: ObservedLock): boolean =>
  a.content === b.content && a.ino === b.ino && a.mtimeMs === b.mtimeMs;

/**
 * Removes the lock at `path` only if it is still exactly `judged`: same content, same file, not
 * refreshed since. There is no compare-and-delete on a file system, so the lock is first moved
 * aside (rename is atomic), then what was moved is compared. Two nodes breaking one stale lock at
 * once: the first moves it and takes the maildrop; the second, which read the same stale lock,
 * moves the FIRST node's fresh lock aside, sees that it is not what it judged stale, and puts it
 * back (link, which fails rather than replace a lock made meanwhile; should that happen, the
 * first node's refresh finds its lock gone and its session ends without UPDATE: nothing is lost).
 * Resolves to whether the stale lock was removed.
 */
export async function removeIfSame(path: string, judged: ObservedLock, fs: MaildirFs): Promise<boolean> {
  const aside = `${path}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await fs.rename(path, aside);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
  const moved = await observeLock(aside, fs).catch(() => undefined);
  const isJudged = moved !== undefined && isSameLock(moved, judged);
  if (!isJudged) await fs.link(aside, path).catch(() => undefined);
  await fs.unlink(aside).catch(() => undefined);
  return isJudged;
}

/**
 * Removes what a process killed while taking or recovering the lock left behind: temporary lock
 * files (named after their owner) and locks moved aside (holding their owner's lock content)
 * that are stale, or old. `names` are the maildir's entries. Call it with the lock held, so that
 * no session of this process is making one; failures are ignored (the files are only clutter).
 */
export async function removeLockLeftovers(
  dir: string,
  names: readonly string[],
  ttlMs: number,
  fs: MaildirFs,
): Promise<void> {
  for (const name of names) {
    if (!name.startsWith(`${LOCK_FILE}.`)) continue;
    const path = join(dir, name);
    try {
      if (await isLeftover(name, path, ttlMs, fs)) await fs.unlink(path);
    } catch {
      // Gone meanwhile, or cannot be removed: left for the next session.
    }
  }
}

async function isLeftover(name: string, path: string, ttlMs: number, fs: MaildirFs): Promise<boolean> {
  const rest = name.slice(LOCK_FILE.length + 1);
  if (rest.endsWith('.tmp')) {
    const [pidText, start, , ...host] = rest.slice(0, -'.tmp'.length).split('_');
    const pid = Number(pidText);
    if (host.join('_') === ownHost && Number.isInteger(pid) && pid > 0) {
      return isOwn(pid, start) || (await isGone(pid, start, fs));
    }
  } else if (rest.startsWith('stale-')) {
    // A lock moved aside keeps its mtime: one still fresh may be on its way back (see removeIfSame).
    const lock = await observeLock(path, fs);
    if (lock.content.endsWith('\n') && lock.content.trim().split(' ').length === 4) {
      return (await whyStale(lock, ttlMs, fs)) !== undefined;
    }
  } else {
    return false;
  }
  // Another host's, or not named as this version names them: only its age tells.
  return Date.now() - (await fs.lstat(path)).mtimeMs > LEFTOVER_AGE_MS;
}
