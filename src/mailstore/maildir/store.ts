import { join, resolve } from 'node:path';
import { asError, Pop3Error, RespCode } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { isValidUserName, type MailUser } from '../../user.js';
import { DEFAULT_POLICY, effectivePolicy } from '../../policy.js';
import { canBeLost, type MaildropLease, type MaildropLocks } from '../locks.js';
import type { Maildrop, MailStore } from '../types.js';
import { blockingFs, threadPoolFs, type MaildirFs } from './fs.js';
import { FileMaildropLocks } from './lock.js';
import { MaildirMaildrop } from './maildrop.js';
import type { PolicyRun } from './deletion.js';
import { UIDL_HISTORY_FILE } from './uidl-history.js';
import { POLICY_STATE_FILE, PolicyState } from './policy-state.js';
import { scanMaildrop, type ScannedMessage } from './scan.js';
import { sweepAtOpen } from './sweep.js';
import { ensureMaildirFolders } from './folder.js';
import { removeInterruptedSaves } from './size-index.js';

/** Options of {@link MaildirStore}: the mail root, and how it touches files and takes locks. */
export interface MaildirStoreOptions {
  /** The mail root: each user's maildir is `<root>/<user>/{new,cur,tmp}`. */
  readonly root: string;
  readonly logger?: Logger;
  /** Files moved or measured at once when sizes are not yet known (first login to a big maildrop), when not blocking. */
  readonly measureConcurrency?: number;
  /**
   * Make every file-system call blocking (see `blockingFs`): folders, lock and size index at
   * login, renames and deletions at commit, message reads (a small message in one pread, a bigger
   * one a chunk at a time as the socket takes it), and the files of a maildrop scan, in bursts of at
   * most {@link blockingBurstMs} between which other sessions are served. From the page cache such
   * a call takes a few microseconds, far less than a hand-off to libuv's thread pool. Default true;
   * set false where one call may take long (network filesystems).
   */
  readonly blockingIo?: boolean;
  /** Longest run of blocking calls before other work gets its turn. Default 5 ms. */
  readonly blockingBurstMs?: number;
  /**
   * The maildrop locks. Default: a lock file in each maildir, good across the processes of one
   * machine ({@link FileMaildropLocks}).
   */
  readonly locks?: MaildropLocks;
  /**
   * For the default lock file: how long a lock lives without being refreshed (`lockTtl`), see
   * `FileMaildropLocksOptions.ttlMs`. Default 30 s.
   */
  readonly lockTtlMs?: number;
  /** The clock of `keep-days` and EXPIRE, in milliseconds since 1970. Default `Date.now`. */
  readonly now?: () => number;
}

/** The `lost` of a maildrop whose lease cannot be lost. */
const NEVER_LOST = new AbortController().signal;

/** Default of {@link MaildirStoreOptions.blockingBurstMs}. */
export const DEFAULT_BLOCKING_BURST_MS = 5;

/**
 * Mail in Maildir folders. Opening a maildrop takes its lock, then scans it (see `scanMaildrop`).
 * The store never builds a path from anything but a valid user name and names read from the
 * maildir itself, and touches files only through its `MaildirFs`.
 */
export class MaildirStore implements MailStore {
  #root: string;
  readonly #logger: Logger;
  readonly #measureConcurrency: number;
  readonly #burstMs: number;
  readonly #fs: MaildirFs;
  readonly #locks: MaildropLocks;
  readonly #now: () => number;

  constructor(options: MaildirStoreOptions) {
    this.#root = resolve(options.root);
    this.#logger = options.logger ?? silentLogger;
    this.#measureConcurrency = options.measureConcurrency ?? 8;
    this.#burstMs = options.blockingBurstMs ?? DEFAULT_BLOCKING_BURST_MS;
    this.#now = options.now ?? Date.now;
    this.#fs = (options.blockingIo ?? true) ? blockingFs : threadPoolFs;
    this.#locks =
      options.locks ??
      new FileMaildropLocks(this.#fs, {
        logger: this.#logger,
        ...(options.lockTtlMs === undefined ? {} : { ttlMs: options.lockTtlMs }),
      });
  }

  get root(): string {
    return this.#root;
  }

  /** Changes the mail root for maildrops opened from now on; open ones keep theirs. */
  set root(path: string) {
    this.#root = resolve(path);
  }

  /** The maildir of a user, after checking the name. */
  maildirOf(user: string): string {
    if (!isValidUserName(user))
      throw new Pop3Error('invalid user name', RespCode.sysPerm, { text: 'invalidUserName' });
    return join(this.#root, user);
  }

  async open(user: MailUser): Promise<Maildrop> {
    const { dir, log, lease, names, scanned } = await this.#lockAndScan(user.name);
    const fs = this.#fs;
    try {
      // The folder's listing says whether there is a state file: none costs no more calls.
      const hasState = names === undefined || names.includes(POLICY_STATE_FILE);
      const run: PolicyRun = {
        dir,
        fs,
        log,
        state: hasState ? await PolicyState.load(dir, fs, log) : PolicyState.empty(dir, fs),
        policy: effectivePolicy(DEFAULT_POLICY, user.policy),
        now: this.#now,
        lost: canBeLost(lease) ? lease.lost : NEVER_LOST,
        burstMs: this.#burstMs,
      };
      const messages = await sweepAtOpen(run, lease, scanned);
      return new MaildirMaildrop(dir, messages, lease, log, fs, this.#burstMs, run);
    } catch (error) {
      return openFailed(error, lease, dir, log);
    }
  }

  /**
   * Runs `action` on a user's maildrop as a login finds it (the scan, `new/` moved to `cur/`), with
   * its lock held, then releases it: for an administrator's change to the maildrop's own files
   * (`poplarctl uidl import`), never while a session holds it (`Pop3Error` with `[IN-USE]`).
   */
  async withMaildrop<T>(
    user: string,
    action: (dir: string, messages: readonly ScannedMessage[]) => Promise<T>,
  ): Promise<T> {
    const { dir, lease, scanned } = await this.#lockAndScan(user);
    try {
      return await action(dir, scanned);
    } finally {
      await lease.release();
    }
  }

  /** The folders, the lock, the scan: the first steps of {@link open}. */
  async #lockAndScan(name: string): Promise<{
    dir: string;
    log: Logger;
    lease: MaildropLease;
    names: string[] | undefined;
    scanned: ScannedMessage[];
  }> {
    const dir = this.maildirOf(name);
    const log = this.#logger.child({ user: name });
    const fs = this.#fs;
    try {
      await ensureMaildirFolders(dir, fs);
    } catch (error) {
      log.error({ dir, err: asError(error) }, 'maildir cannot be created');
      throw new Pop3Error('mailbox unavailable, try again later', RespCode.sysTemp, {
        text: 'mailboxUnavailable',
      });
    }
    let lease: MaildropLease;
    try {
      lease = await this.#locks.acquire({ user: name, path: dir });
    } catch (error) {
      // [IN-USE] is a normal answer; anything else (a read-only or full disk) is the operator's business.
      if (error instanceof Pop3Error && error.code !== RespCode.inUse) {
        log.error(
          { dir, err: error.cause instanceof Error ? error.cause : error },
          'maildrop lock cannot be taken',
        );
      }
      throw error;
    }
    try {
      const names = await removeInterruptedSaves(dir, fs, [POLICY_STATE_FILE, UIDL_HISTORY_FILE]);
      const scanned = await scanMaildrop(dir, {
        fs,
        log,
        concurrency: this.#measureConcurrency,
        burstMs: this.#burstMs,
      });
      return { dir, log, lease, names, scanned };
    } catch (error) {
      return openFailed(error, lease, dir, log);
    }
  }
}

/** An open that failed once the lock was held: the lock let go, a Pop3Error as it is, anything else logged and `[SYS/TEMP]`. */
async function openFailed(error: unknown, lease: MaildropLease, dir: string, log: Logger): Promise<never> {
  await lease.release();
  if (error instanceof Pop3Error) throw error;
  log.error({ dir, err: asError(error) }, 'maildrop cannot be opened');
  throw new Pop3Error('mailbox unavailable, try again later', RespCode.sysTemp, {
    cause: error,
    text: 'mailboxUnavailable',
  });
}
