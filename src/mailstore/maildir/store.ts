import {
  close,
  closeSync,
  constants,
  type Dirent,
  createReadStream,
  open as openCallback,
  openSync,
  read as readCallback,
  readSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { join, resolve } from 'node:path';
import { isValidUserName, type MailUser } from '../../user.js';
import { isErrno, MessageGoneError, Pop3Error, RespCode } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { MessageMeter, type MessageMeasure } from '../../message/octets.js';
import type {
  CommitResult,
  Maildrop,
  MaildropChanges,
  MailStore,
  MessageContent,
  MessageInfo,
  ReadOptions,
} from '../types.js';
import { curNameFor, parseMaildirName, uidFor, withFlag, type MaildirName } from './filename.js';
import { blockingFs, threadPoolFs, type MaildirFs } from './fs.js';
import { MaildropLock, removeLockLeftovers } from './lock.js';
import { removeInterruptedSaves, SizeIndex } from './size-index.js';

export interface MaildirStoreOptions {
  /** The mail root: each user's maildir is `<root>/<user>/{new,cur,tmp}`. */
  readonly root: string;
  readonly logger?: Logger;
  /** Files moved or measured at once when sizes are not yet known (first login to a big maildrop), when not blocking. */
  readonly measureConcurrency?: number;
  /**
   * Make every file-system call blocking (see {@link blockingFs}): folders, lock and size index at
   * login, renames and deletions at commit, message reads (a small message in one pread, a bigger
   * one a chunk at a time as the socket takes it), and the files of a maildrop scan, in bursts of at
   * most {@link blockingBurstMs} between which other sessions are served. From the page cache such
   * a call takes a few microseconds, far less than a hand-off to libuv's thread pool. Default true;
   * set false where one call may take long (network filesystems).
   */
  readonly blockingIo?: boolean;
  /** Longest run of blocking calls before other work gets its turn. Default 5 ms. */
  readonly blockingBurstMs?: number;
}

/** Default of {@link MaildirStoreOptions.blockingBurstMs}. */
export const DEFAULT_BLOCKING_BURST_MS = 5;

/** Characters that may not appear in a message file name we serve (they would break the size index or logs). */
// eslint-disable-next-line no-control-regex
const UNSAFE_NAME = /[\x00-\x1f\x7f]/;

/**
 * Mail in Maildir folders. Opening a maildrop takes its lock, moves `new/` into `cur/`, lists
 * `cur/` in delivery order and finds every size (from `,W=`, the size index, or by reading the
 * file once). The store never builds a path from anything but a valid user name and names read
 * from the maildir itself.
 */
export class MaildirStore implements MailStore {
  #root: string;
  readonly #logger: Logger;
  readonly #measureConcurrency: number;
  readonly #burstMs: number;
  readonly #fs: MaildirFs;

  constructor(options: MaildirStoreOptions) {
    this.#root = resolve(options.root);
    this.#logger = options.logger ?? silentLogger;
    this.#measureConcurrency = options.measureConcurrency ?? 8;
    this.#burstMs = options.blockingBurstMs ?? DEFAULT_BLOCKING_BURST_MS;
    this.#fs = (options.blockingIo ?? true) ? blockingFs : threadPoolFs;
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
    if (!isValidUserName(user)) throw new Pop3Error('invalid user name', RespCode.sysPerm);
    return join(this.#root, user);
  }

  async open(user: MailUser): Promise<Maildrop> {
    const dir = this.maildirOf(user.name);
    const log = this.#logger.child({ user: user.name });
    const fs = this.#fs;
    try {
      await ensureMaildir(dir, fs);
    } catch (error) {
      log.error({ dir, err: String(error) }, 'maildir cannot be created');
      throw new Pop3Error('mailbox unavailable, try again later', RespCode.sysTemp);
    }
    let lock: MaildropLock;
    try {
      lock = await MaildropLock.acquire(dir, fs);
    } catch (error) {
      // [IN-USE] is a normal answer; anything else (a read-only or full disk) is the operator's business.
      if (error instanceof Pop3Error && error.code !== RespCode.inUse) {
        log.error(
          { dir, err: String(error.cause instanceof Error ? error.cause : error) },
          'maildrop lock cannot be taken',
        );
      }
      throw error;
    }
    try {
      await removeLeftovers(dir, fs);
      const messages = await this.#scan(dir, log);
      return new MaildirMaildrop(dir, messages, lock, log, fs, this.#burstMs);
    } catch (error) {
      await lock.release();
      if (error instanceof Pop3Error) throw error;
      log.error({ dir, err: String(error) }, 'maildrop cannot be opened');
      throw new Pop3Error('mailbox unavailable, try again later', RespCode.sysTemp, { cause: error });
    }
  }

  /** How the scan touches each file: one at a time in blocking bursts, or several at once through the thread pool. */
  #fileOps(): FileOps {
    const pause = pauser(this.#fs, this.#burstMs);
    return this.#fs.isBlocking
      ? { concurrency: 1, measure: measureFileBlocking, pause }
      : { concurrency: this.#measureConcurrency, measure: measureFile, pause };
  }

  async #scan(dir: string, log: Logger): Promise<ScannedMessage[]> {
    const ops = this.#fileOps();
    const fs = this.#fs;
    await moveNewToCur(dir, log, ops, fs);
    const entries = await fs.readdirEntries(join(dir, 'cur'));
    const index = await SizeIndex.load(dir, fs);
    const found: ScannedMessage[] = [];
    const toMeasure: ScannedMessage[] = [];
    for (const entry of entries) {
      // Only regular files: no dotfiles, folders, symbolic links or devices.
      if (!entry.isFile() || entry.name.startsWith('.') || UNSAFE_NAME.test(entry.name)) continue;
      const parsed = parseMaildirName(entry.name);
      const known = index.get(parsed.base);
      const message: ScannedMessage = {
        file: parsed,
        uid: uidFor(parsed.base),
        size: parsed.virtualSize ?? known?.size ?? -1,
        isVerbatim: known?.isVerbatim ?? false,
      };
      if (message.size < 0) toMeasure.push(message);
      found.push(message);
    }
    // Two files with one base (see uniqueUids) would share one index entry: measure each of them.
    const seen = new Set<string>();
    const shared = new Set<string>();
    for (const m of found) (seen.has(m.file.base) ? shared : seen).add(m.file.base);
    for (const m of found) {
      if (shared.has(m.file.base) && m.file.virtualSize === undefined && m.size >= 0) toMeasure.push(m);
    }
    const unreadable = await measureAll(dir, toMeasure, index, log, ops);
    const messages = found.filter((m) => !unreadable.has(m));
    index.retain(new Set(messages.map((m) => m.file.base)));
    try {
      await index.save();
    } catch (error) {
      log.warn({ err: String(error) }, 'size index not saved');
    }
    messages.sort(byDelivery);
    return uniqueUids(messages);
  }
}

/**
 * For a run of file calls: a function to call between two of them. With blocking calls it lets the
 * event loop serve other sessions once `burstMs` have passed since the run (or the last such
 * pause) began; through the thread pool other sessions are served anyway, so it does nothing.
 */
function pauser(fs: MaildirFs, burstMs: number): () => Promise<void> | undefined {
  if (!fs.isBlocking) return () => undefined;
  let burstEnd = performance.now() + burstMs;
  return () => {
    if (performance.now() < burstEnd) return undefined;
    return new Promise<void>((resolve) => {
      setImmediate(() => {
        burstEnd = performance.now() + burstMs;
        resolve();
      });
    });
  };
}

/** File operations of a scan, blocking or not; {@link FileOps.pause} lets other work run between blocking bursts. */
interface FileOps {
  readonly concurrency: number;
  measure(path: string): Promise<MessageMeasure> | MessageMeasure;
  pause(): Promise<void> | undefined;
}

/** Runs `action` on every item, `concurrency` at a time. */
async function forEachLimited<T>(
  items: readonly T[],
  concurrency: number,
  action: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await action(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** Reads the messages whose size is unknown; returns those that could not be read. */
async function measureAll(
  dir: string,
  messages: ScannedMessage[],
  index: SizeIndex,
  log: Logger,
  ops: FileOps,
): Promise<Set<ScannedMessage>> {
  const unreadable = new Set<ScannedMessage>();
  await forEachLimited(messages, ops.concurrency, async (message) => {
    await ops.pause();
    try {
      const measure = await ops.measure(join(dir, 'cur', message.file.name));
      message.size = measure.size;
      message.isVerbatim = measure.isVerbatim;
      index.set(message.file.base, measure);
    } catch (error) {
      log.warn({ file: message.file.name, err: String(error) }, 'message skipped: unreadable');
      unreadable.add(message);
    }
  });
  return unreadable;
}

interface ScannedMessage {
  file: MaildirName;
  uid: string;
  size: number;
  isVerbatim: boolean;
}

function byDelivery(a: ScannedMessage, b: ScannedMessage): number {
  const ta = a.file.deliveredAt ?? Number.MAX_SAFE_INTEGER;
  const tb = b.file.deliveredAt ?? Number.MAX_SAFE_INTEGER;
  if (ta !== tb) return ta - tb;
  return a.file.base < b.file.base ? -1 : a.file.base > b.file.base ? 1 : 0;
}

/** Two files with one base (a copy left in `new/` and `cur/`, say) would share a uid: the later one gets a suffix. */
function uniqueUids(messages: ScannedMessage[]): ScannedMessage[] {
  const seen = new Set<string>();
  for (const m of messages) {
    let uid = m.uid;
    for (let n = 2; seen.has(uid); n++) uid = uidFor(`${m.file.base}~${n}`);
    m.uid = uid;
    seen.add(uid);
  }
  return messages;
}

/**
 * Creates the maildir's folders where missing, and makes sure the user's folder and its three
 * folders are real directories: a symbolic link there could lead outside the mail root.
 */
async function ensureMaildir(dir: string, fs: MaildirFs): Promise<void> {
  for (const path of [dir, join(dir, 'cur'), join(dir, 'new'), join(dir, 'tmp')]) {
    try {
      if ((await fs.lstat(path)).isDirectory()) continue;
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
      await fs.mkdir(path);
      continue;
    }
    throw new Error(`${path} is not a directory (a symbolic link?)`);
  }
}

/**
 * What a crash left in the maildir (lock and size-index temporaries), found with one readdir.
 * Called with the lock held.
 */
async function removeLeftovers(dir: string, fs: MaildirFs): Promise<void> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  await removeLockLeftovers(dir, names, fs);
  await removeInterruptedSaves(dir, names, fs);
}

/** Moves delivered messages from `new/` to `cur/` (each rename is atomic: a message is in one place or the other). */
async function moveNewToCur(dir: string, log: Logger, ops: FileOps, fs: MaildirFs): Promise<void> {
  const entries = await fs.readdirEntries(join(dir, 'new'));
  const names = entries
    .filter((e) => e.isFile() && !e.name.startsWith('.') && !UNSAFE_NAME.test(e.name))
    .map((e) => e.name);
  await forEachLimited(names, ops.concurrency, async (name) => {
    await ops.pause();
    try {
      await fs.rename(join(dir, 'new', name), join(dir, 'cur', curNameFor(name)));
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return; // taken by another program meanwhile
      log.error({ file: name, err: String(error) }, 'cannot move message from new/ to cur/');
      throw new Pop3Error('mailbox unavailable, try again later', RespCode.sysTemp, { cause: error });
    }
  });
}

async function exists(path: string, fs: MaildirFs): Promise<boolean> {
  try {
    await fs.access(path);
    return true;
  } catch {
    return false;
  }
}

const ignore = (): void => {};

/** Opens for reading, refusing a symbolic link (ELOOP): a message file is never a way out of the maildir. */
const READ_NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW;

/** open(2) for reading, with the callback API: one thread-pool trip and no FileHandle to track. */
function openForReading(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    openCallback(path, READ_NO_FOLLOW, (error, fd) => {
      if (error === null) resolve(fd);
      else if (error.code === 'ELOOP')
        reject(new MessageGoneError()); // a symbolic link now
      else reject(error);
    });
  });
}

/** One pread(2) into `buffer` at `position`; resolves to the bytes read. */
function readAt(fd: number, buffer: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    readCallback(fd, buffer, 0, buffer.length, position, (error, bytesRead) => {
      if (error === null) resolve(bytesRead);
      else reject(error);
    });
  });
}

/** Reads a whole file with blocking calls, measuring it as it goes. */
/** The read buffer of {@link measureFileBlocking}: it runs start to end without yielding, so one is enough. */
const blockingMeasureBuffer = Buffer.allocUnsafe(65_536);

function measureFileBlocking(path: string): MessageMeasure {
  const fd = openSync(path, READ_NO_FOLLOW);
  try {
    const meter = new MessageMeter();
    const buffer = blockingMeasureBuffer;
    for (;;) {
      const bytesRead = readSync(fd, buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      meter.push(buffer.subarray(0, bytesRead));
    }
    return meter.finish();
  } finally {
    closeSync(fd);
  }
}

async function measureFile(path: string): Promise<MessageMeasure> {
  const handle = await open(path, READ_NO_FOLLOW);
  try {
    const meter = new MessageMeter();
    const buffer = Buffer.allocUnsafe(65_536);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      meter.push(buffer.subarray(0, bytesRead));
    }
    return meter.finish();
  } finally {
    await handle.close();
  }
}

/**
 * A file read as a stream of blocking pread(2) calls, one chunk each time the consumer asks for
 * more: no thread-pool trip per chunk, and still no more than one chunk read ahead of the socket.
 * The descriptor is closed at the end, on error and on destroy.
 */
class BlockingFileStream extends Readable {
  #fd: number | undefined;
  #position = 0;
  readonly #chunkBytes: number;

  constructor(fd: number, chunkBytes: number, signal: AbortSignal | undefined) {
    super({ highWaterMark: chunkBytes, ...(signal === undefined ? {} : { signal }) });
    this.#fd = fd;
    this.#chunkBytes = chunkBytes;
  }

  override _read(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    let bytesRead: number;
    let buffer: Buffer;
    try {
      buffer = Buffer.allocUnsafe(this.#chunkBytes);
      bytesRead = readSync(fd, buffer, 0, buffer.length, this.#position);
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    this.#position += bytesRead;
    if (bytesRead === 0) {
      this.#closeFile();
      this.push(null);
    } else {
      this.push(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#closeFile();
    callback(error);
  }

  #closeFile(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}

class MaildirMaildrop implements Maildrop {
  readonly messages: readonly MessageInfo[];
  readonly #dir: string;
  readonly #byUid: Map<string, ScannedMessage>;
  readonly #lock: MaildropLock;
  readonly #log: Logger;
  readonly #fs: MaildirFs;
  /** With blocking calls: the longest run of them at QUIT before other sessions get a turn. */
  readonly #burstMs: number;

  constructor(
    dir: string,
    scanned: ScannedMessage[],
    lock: MaildropLock,
    log: Logger,
    fs: MaildirFs,
    burstMs: number,
  ) {
    this.#dir = dir;
    this.#fs = fs;
    this.#burstMs = burstMs;
    this.#lock = lock;
    this.#log = log;
    this.#byUid = new Map(scanned.map((m) => [m.uid, m]));
    this.messages = scanned.map((m) => ({ uid: m.uid, size: m.size, isVerbatim: m.isVerbatim }));
  }

  async read(uid: string, options: ReadOptions): Promise<MessageContent> {
    const message = this.#message(uid);
    const chunkBytes = options.chunkBytes ?? 65_536;
    if (this.#fs.isBlocking) {
      const content = this.#readBlocking(message, chunkBytes, options.signal);
      if (content !== undefined) return content;
    }
    const fd = await this.#withCurrentName(message, openForReading);
    if (fd === undefined) throw new MessageGoneError();
    if (message.size <= chunkBytes) {
      // A small message in one read. Its stored bytes are at most its size (LF ends count as CRLF),
      // so a read of one byte more shows whether the file is all there.
      try {
        const buffer = Buffer.allocUnsafe(message.size + 1);
        const bytesRead = await readAt(fd, buffer, 0);
        if (bytesRead <= message.size) {
          close(fd, ignore);
          return buffer.subarray(0, bytesRead);
        }
      } catch (error) {
        close(fd, ignore);
        throw error;
      }
      // Bigger than the snapshot said: changed by another program. Sent as it is now, streamed.
    }
    return createReadStream('', { fd, start: 0, highWaterMark: chunkBytes, signal: options.signal });
  }

  /**
   * A message read with blocking calls: a small one whole, in one open + pread + close; a bigger
   * one as a stream of blocking chunk reads, each taken only when the socket has room for it.
   * Undefined when the file is not under its scanned name (renamed by another program) or a small
   * one is bigger than the snapshot says (changed): the caller then takes the general path, which
   * copes with both.
   */
  #readBlocking(
    message: ScannedMessage,
    chunkBytes: number,
    signal: AbortSignal | undefined,
  ): MessageContent | undefined {
    let fd: number;
    try {
      fd = openSync(join(this.#dir, 'cur', message.file.name), READ_NO_FOLLOW);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      if (isErrno(error, 'ELOOP')) throw new MessageGoneError(); // replaced by a symbolic link
      throw error;
    }
    if (message.size > chunkBytes) return new BlockingFileStream(fd, chunkBytes, signal);
    try {
      const buffer = Buffer.allocUnsafe(message.size + 1);
      const bytesRead = readSync(fd, buffer, 0, buffer.length, 0);
      return bytesRead <= message.size ? buffer.subarray(0, bytesRead) : undefined;
    } finally {
      closeSync(fd);
    }
  }

  async commit(changes: MaildropChanges): Promise<CommitResult> {
    const notDeleted: string[] = [];
    // Tens of thousands of renames or deletions (a big maildrop emptied) would otherwise block
    // every other session of this process until they are all done.
    const pause = pauser(this.#fs, this.#burstMs);
    for (const uid of changes.retrieved) {
      await pause();
      const message = this.#message(uid);
      if (withFlag(message.file, 'S') === message.file.name) continue;
      try {
        // The target is computed when the action runs: after a rename by another program, from the new name.
        await this.#withCurrentName(message, async (path) => {
          const target = join(this.#dir, 'cur', withFlag(message.file, 'S'));
          if (target === path) return;
          // rename(2) would silently replace a file already there: a duplicate of this base, another message.
          if (await exists(target, this.#fs)) {
            await this.#fs.access(path); // ENOENT: renamed meanwhile, looked up again
            throw new Error(`${target} already exists`);
          }
          await this.#fs.rename(path, target);
        });
      } catch (error) {
        this.#log.warn({ file: message.file.name, err: String(error) }, 'cannot mark message seen');
      }
    }
    for (const uid of changes.deleted) {
      await pause();
      const message = this.#message(uid);
      try {
        // A message that is already gone counts as deleted.
        await this.#withCurrentName(message, (path) => this.#fs.unlink(path));
      } catch (error) {
        this.#log.error({ file: message.file.name, err: String(error) }, 'cannot delete message');
        notDeleted.push(uid);
      }
    }
    return { notDeleted };
  }

  async close(): Promise<void> {
    await this.#lock.release();
  }

  #message(uid: string): ScannedMessage {
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
