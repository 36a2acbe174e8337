import { dirname, join } from 'node:path';
import { asError, isErrno, Pop3Error, RespCode } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { inUseError, type MaildropKey, type MaildropLease, type MaildropLocks } from '../locks.js';
import { RefreshedLease } from '../refreshed-lease.js';
import { threadPoolFs, type MaildirFs } from './fs.js';
import {
  createExclusive,
  heldContents,
  LOCK_FILE,
  newLockContent,
  observeLock,
  ownerOf,
  removeIfSame,
  removeLockLeftovers,
  whyStale,
  type ObservedLock,
} from './lock-files.js';

export { LOCK_FILE } from './lock-files.js';

/** Default of {@link FileMaildropLocksOptions.ttlMs}: `lockTtl`'s 30 seconds. */
export const DEFAULT_LOCK_TTL_MS = 30_000;

export interface FileMaildropLocksOptions {
  /**
   * How long a lock lives without being refreshed: its holder refreshes it (its mtime) every third
   * of this, and a lock not refreshed for this long is stale whatever host or process wrote it
   * (a holder dead on another machine of a shared mail root). Default 30 s.
   */
  readonly ttlMs?: number;
  /** Where broken stale locks (warn) and held ones (info) are logged. */
  readonly logger?: Logger;
}

/** Lock paths held by this process: a second session of the same server is refused without touching the disk. */
const heldHere = new Set<string>();

/**
 * The maildrop lock as a file in the maildir: a file created with O_EXCL that names its owner
 * (pid, process start time, host), refreshed by its holder every third of the TTL. A lock whose
 * owner is dead (killed with -9, say) is recovered by the next session: at once when the owner was
 * a process of this host, after the TTL otherwise (another node of a shared mail root, a container
 * restarted under a new host name). The next session also removes what a crash left while taking
 * or recovering a lock. `key.path` is the maildir.
 */
export class FileMaildropLocks implements MaildropLocks {
  readonly #fs: MaildirFs;
  readonly #ttlMs: number;
  readonly #log: Logger;

  constructor(fs: MaildirFs, options: FileMaildropLocksOptions = {}) {
    this.#fs = fs;
    this.#ttlMs = options.ttlMs ?? DEFAULT_LOCK_TTL_MS;
    this.#log = options.logger ?? silentLogger;
  }

  async acquire(key: MaildropKey): Promise<MaildropLease> {
    const lease = await this.#take(key);
    const names = await this.#fs.readdir(key.path).catch(() => [] as string[]);
    await removeLockLeftovers(key.path, names, this.#ttlMs, this.#fs);
    return lease;
  }

  /**
   * Takes the lock of the maildrop in `key.path`. Rejects with `[IN-USE]` when another session
   * holds it, and with `[SYS/TEMP]` when the file system does not let it be taken (read-only, say).
   */
  async #take(key: MaildropKey): Promise<FileLease> {
    const fs = this.#fs;
    const path = join(key.path, LOCK_FILE);
    if (heldHere.has(path)) throw inUseError();
    heldHere.add(path);
    try {
      const content = await newLockContent(fs);
      for (let attempt = 0; attempt < 3; attempt++) {
        if (await createExclusive(path, content, fs)) return this.#held(path, content, key);
        let existing: ObservedLock;
        try {
          existing = await observeLock(path, fs);
        } catch (error) {
          if (isErrno(error, 'ENOENT')) continue; // released meanwhile
          throw error;
        }
        // NFS may answer EEXIST to a link(2) it made, when its reply was lost and the call resent.
        if (existing.content === content) return this.#held(path, content, key);
        const ageS = Math.round((Date.now() - existing.mtimeMs) / 1000);
        const staleness = await whyStale(existing, this.#ttlMs, fs);
        const fields = { user: key.user, dir: key.path, owner: ownerOf(existing.content), ageS };
        if (staleness === undefined) {
          this.#log.info(fields, 'maildrop lock held by another session');
          throw inUseError();
        }
        if (await removeIfSame(path, existing, fs)) {
          this.#log.warn({ ...fields, reason: staleness }, 'stale maildrop lock broken');
        }
      }
      throw inUseError();
    } catch (error) {
      heldHere.delete(path);
      if (error instanceof Pop3Error) throw error;
      throw new Pop3Error('mailbox unavailable, try again later', RespCode.sysTemp, {
        cause: error,
        text: 'mailboxUnavailable',
      });
    }
  }

  #held(path: string, content: string, key: MaildropKey): FileLease {
    return new FileLease(path, content, this.#fs, this.#ttlMs, this.#log, key.user);
  }
}

/**
 * One lock file, held and refreshed. Its {@link lost} signal aborts when the lock is found to be
 * no longer this session's (broken by another node that found it stale, removed) or could not be
 * refreshed for two thirds of the TTL (it may be broken any time now).
 */
class FileLease extends RefreshedLease {
  readonly #path: string;
  readonly #content: string;
  readonly #fs: MaildirFs;
  /** performance.now() of the last refresh that found the lock ours. */
  #refreshedAt = performance.now();

  constructor(path: string, content: string, fs: MaildirFs, ttlMs: number, log: Logger, user: string) {
    super(ttlMs, log, user);
    this.#path = path;
    this.#content = content;
    this.#fs = fs;
    heldContents.add(content);
  }

  /**
   * Checks that the lock file still holds what this lease wrote, and sets its mtime to now.
   * Resolves to whether the lock is ours and safe to act on: refreshed now, or found ours but not
   * refreshed (a read-only file system) while within two thirds of the TTL since the last refresh.
   * A lock found to be another's, or gone from a maildir still there, is lost. Before UPDATE, this
   * means another node can only break the lock a whole TTL after the check: a lock file with
   * another content means another session broke this one as stale and may be working on the
   * maildrop now; a missing one, that it is about to.
   */
  protected async refresh(): Promise<boolean> {
    try {
      const current = await observeLock(this.#path, this.#fs);
      if (current.content !== this.#content) {
        this.lose({ owner: ownerOf(current.content) }, 'maildrop lock taken by another session');
        return false;
      }
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) {
        this.#failed(error);
        return false; // not known to be ours
      }
      // The whole maildir removed under the session: no one else's maildrop, nothing to refresh.
      if (!(await this.#fs.exists(dirname(this.#path)))) return true;
      this.lose({}, 'maildrop lock removed by another session');
      return false;
    }
    try {
      await this.#fs.touch(this.#path);
      this.#refreshedAt = performance.now();
      return true;
    } catch (error) {
      return this.#failed(error);
    }
  }

  /** A refresh that failed: lost once two thirds of the TTL have passed since the last one. */
  #failed(error: unknown): boolean {
    const sinceMs = Math.round(performance.now() - this.#refreshedAt);
    if (sinceMs >= (this.ttlMs * 2) / 3) {
      this.lose({ err: asError(error), sinceMs }, 'maildrop lock could not be refreshed in time');
      return false;
    }
    this.log.warn({ user: this.user, err: asError(error), sinceMs }, 'maildrop lock could not be refreshed');
    return true;
  }

  /** Removes the lock file if it is still ours. */
  protected async giveUp(): Promise<void> {
    try {
      const current = await observeLock(this.#path, this.#fs);
      if (current.content === this.#content) {
        // A lost lease's file may be broken by another node at any moment: moved aside and
        // compared, so that a successor's fresh lock is never the one removed.
        if (this.isLost()) await removeIfSame(this.#path, current, this.#fs);
        else await this.#fs.unlink(this.#path);
      }
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
      const current = heldHere.has(path) ? undefined : await observeLock(path, threadPoolFs);
      if (current?.content === content && !heldHere.has(path))
        await removeIfSame(path, current, threadPoolFs);
      unreleased.delete(path);
    } catch (error) {
      // Still read-only, say: next time.
      if (isErrno(error, 'ENOENT')) unreleased.delete(path);
    }
  }
  retryMs = unreleased.size === 0 ? FIRST_RETRY_MS : Math.min(retryMs * 2, MAX_RETRY_MS);
  retryTimer = unreleased.size === 0 ? undefined : setTimeout(() => void retryReleases(), retryMs).unref();
}
