import type { Dirent } from 'node:fs';
import { join } from 'node:path';
import { asError, isErrno, MessageGoneError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { canBeLost, type MaildropLease } from '../locks.js';
import type {
  CommitResult,
  MaildropWithLoss,
  MaildropChanges,
  MessageContent,
  MessageInfo,
  ReadOptions,
} from '../types.js';
import { deleteByPolicy, noteRetrievals, type PolicyRun, type WithMessageFile } from './deletion.js';
import { parseMaildirName, withFlag } from './filename.js';
import { NotRegularFileError, pauser, type MaildirFs } from './fs.js';
import { readMessageFile } from './read.js';
import type { ScannedMessage } from './scan.js';
import { noteLogout } from './uidl-history.js';

/** Default of {@link ReadOptions.chunkBytes}. */
const DEFAULT_CHUNK_BYTES = 65_536;

/** The `lost` of a maildrop whose lease cannot be lost. */
const NEVER_LOST = new AbortController().signal;

/** One session's view of a maildir: the scan's snapshot, read and changed through the lease it holds. */
export class MaildirMaildrop implements MaildropWithLoss {
  readonly messages: readonly MessageInfo[];
  /** Aborts when the lease is lost (see `LosableMaildropLease`): the engine then ends the session. */
  readonly lost: AbortSignal;
  readonly #dir: string;
  readonly #scanned: readonly ScannedMessage[];
  /** Built at the first read or commit: a session that only lists never needs it. */
  #byUid: Map<string, ScannedMessage> | undefined;
  readonly #lease: MaildropLease;
  readonly #log: Logger;
  readonly #fs: MaildirFs;
  /** With blocking calls: the longest run of them at QUIT before other sessions get a turn. */
  readonly #burstMs: number;
  /** The user's delete and EXPIRE policy and the maildrop's state. */
  readonly #run: PolicyRun;
  /** Uids UPDATE removed from the listing (deleted, hidden, moved): for the UIDL history. */
  readonly #removed = new Set<string>();

  constructor(
    dir: string,
    scanned: readonly ScannedMessage[],
    lease: MaildropLease,
    log: Logger,
    fs: MaildirFs,
    burstMs: number,
    run: PolicyRun,
  ) {
    this.#run = run;
    this.#dir = dir;
    this.#fs = fs;
    this.#burstMs = burstMs;
    this.#lease = lease;
    this.lost = canBeLost(lease) ? lease.lost : NEVER_LOST;
    this.#log = log;
    this.#scanned = scanned;
    this.messages = scanned.map((m) => ({ uid: m.uid, size: m.size, isVerbatim: m.isVerbatim }));
  }

  async read(uid: string, options: ReadOptions): Promise<MessageContent> {
    const message = this.#message(uid);
    const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    let content: MessageContent | undefined;
    try {
      content = await this.#withCurrentName(message, (path) =>
        readMessageFile(this.#fs, path, message.size, chunkBytes, options.signal),
      );
    } catch (error) {
      if (!(error instanceof NotRegularFileError)) throw error;
      // Swapped for a FIFO or a device since the scan: refused without waiting, logged once.
      this.#log.warn({ file: message.file.name }, 'message skipped: not a regular file');
      throw new MessageGoneError(undefined, { cause: error });
    }
    if (content === undefined) throw new MessageGoneError();
    return content;
  }

  async commit(changes: MaildropChanges): Promise<CommitResult> {
    if (changes.deleted.length === 0 && changes.retrieved.length === 0) return { notDeleted: [] };
    try {
      await this.#lease.confirm();
    } catch (error) {
      this.#log.error({ err: asError(error) }, 'maildrop no longer ours: nothing deleted or marked seen');
      throw error;
    }
    const pause = pauser(this.#fs, this.#burstMs);
    const retrieved = changes.retrieved.map((uid) => this.#message(uid));
    for (const message of retrieved) {
      await pause();
      await this.#markSeen(message);
    }
    const run = this.#run;
    const isNoted = noteRetrievals(run, retrieved);
    const deleted = changes.deleted.map((uid) => this.#message(uid));
    const withFile: WithMessageFile = (message, action) => this.#withCurrentName(message, action);
    const notDeleted = await deleteByPolicy(run, deleted, withFile);
    const kept = new Set(notDeleted);
    for (const m of deleted) if (!kept.has(m)) this.#removed.add(m.uid);
    const mode = run.policy.delete.mode;
    const isSaved = deleted.length > notDeleted.length && (mode === 'hide' || mode === 'keep-days');
    if (isNoted && !isSaved) {
      try {
        await run.state.save();
      } catch (error) {
        this.#log.warn(
          { err: asError(error) },
          'first retrievals not recorded (EXPIRE counts from a later one)',
        );
      }
    }
    return { notDeleted: notDeleted.map((m) => m.uid) };
  }

  async close(): Promise<void> {
    try {
      // Written while the maildrop is still ours: sessions of one user add entries one at a time.
      if (!this.lost.aborted) {
        const atLogin = this.messages.map((m) => m.uid);
        const left = atLogin.filter((uid) => !this.#removed.has(uid));
        await noteLogout(this.#dir, this.#fs, this.#log, { atLogin, left, now: this.#run.now() });
      }
    } finally {
      await this.#lease.release();
    }
  }

  /** Adds the `S` flag to the file name; a failure is only logged (the message stays, unmarked). */
  async #markSeen(message: ScannedMessage): Promise<void> {
    if (withFlag(message.file, 'S') === message.file.name) return;
    try {
      // The target is computed when the action runs: after a rename by another program, from the new name.
      await this.#withCurrentName(message, async (path) => {
        const target = join(this.#dir, 'cur', withFlag(message.file, 'S'));
        if (target === path) return;
        // rename(2) would silently replace a file already there: a duplicate of this base, another message.
        if (await this.#fs.exists(target)) {
          await this.#fs.access(path); // ENOENT: renamed meanwhile, looked up again
          throw new Error(`${target} already exists`);
        }
        await this.#fs.rename(path, target);
      });
    } catch (error) {
      this.#log.warn({ file: message.file.name, err: asError(error) }, 'cannot mark message seen');
    }
  }

  #message(uid: string): ScannedMessage {
    this.#byUid ??= new Map(this.#scanned.map((m) => [m.uid, m]));
    const message = this.#byUid.get(uid);
    if (message === undefined) throw new MessageGoneError();
    return message;
  }

  /**
   * Runs `action` on the message's file. Another program may have changed its flags (and so its
   * name) since the scan: on ENOENT the file is looked up again by its base name. Resolves to
   * undefined when the message is gone for good.
   */
  async #withCurrentName<T>(
    message: ScannedMessage,
    action: (path: string) => Promise<T>,
  ): Promise<T | undefined> {
    const cur = join(this.#dir, 'cur');
    try {
      return await action(join(cur, message.file.name));
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
    }
    let entries: Dirent[];
    try {
      entries = await this.#fs.readdirEntries(cur);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined; // cur/ itself removed: the message with it
      throw error;
    }
    const renamed = entries.find(
      (e) =>
        e.isFile() && e.name !== message.file.name && parseMaildirName(e.name).base === message.file.base,
    )?.name;
    if (renamed === undefined) return undefined;
    message.file = parseMaildirName(renamed);
    return action(join(cur, renamed));
  }
}
