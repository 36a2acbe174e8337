import { close, createReadStream, open as openCallback, read as readCallback } from 'node:fs';
import { access, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isValidUserName } from '../../auth/user-name.js';
import { MessageGoneError, Pop3Error, RespCode } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { MessageMeter } from '../../message/octets.js';
import type {
  CommitResult,
  Maildrop,
  MaildropChanges,
  MailStore,
  MailUser,
  MessageContent,
  MessageInfo,
  ReadOptions,
} from '../types.js';
import { curNameFor, parseMaildirName, uidFor, withFlag, type MaildirName } from './filename.js';
import { MaildropLock } from './lock.js';
import { SizeIndex } from './size-index.js';

export interface MaildirStoreOptions {
  /** The mail root: each user's maildir is `<root>/<user>/{new,cur,tmp}`. */
  readonly root: string;
  readonly logger?: Logger;
  /** Messages measured at once when sizes are not yet known (first login to a big maildrop). */
  readonly measureConcurrency?: number;
}

/** Characters that may not appear in a message file name we serve (they would break the size index or logs). */
// eslint-disable-next-line no-control-regex
const UNSAFE_NAME = /[\x00-\x1f\x7f]/;

const isErrno = (error: unknown, ...codes: string[]): boolean =>
  codes.includes((error as NodeJS.ErrnoException | undefined)?.code ?? '');

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

  constructor(options: MaildirStoreOptions) {
    this.#root = resolve(options.root);
    this.#logger = options.logger ?? silentLogger;
    this.#measureConcurrency = options.measureConcurrency ?? 8;
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
    try {
      await ensureMaildir(dir);
    } catch (error) {
      log.error({ dir, err: String(error) }, 'maildir cannot be created');
      throw new Pop3Error('mailbox unavailable, try again later', RespCode.sysTemp);
    }
    const lock = await MaildropLock.acquire(dir);
    try {
      const messages = await this.#scan(dir, log);
      return new MaildirMaildrop(dir, messages, lock, log);
    } catch (error) {
      await lock.release();
      if (error instanceof Pop3Error) throw error;
      log.error({ dir, err: String(error) }, 'maildrop cannot be opened');
      throw new Pop3Error('mailbox unavailable, try again later', RespCode.sysTemp, { cause: error });
    }
  }

  async #scan(dir: string, log: Logger): Promise<ScannedMessage[]> {
    await moveNewToCur(dir, log);
    const entries = await readdir(join(dir, 'cur'), { withFileTypes: true });
    const index = await SizeIndex.load(dir);
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
    const unreadable = await this.#measure(dir, toMeasure, index, log);
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

  /** Reads the messages whose size is unknown; returns those that could not be read. */
  async #measure(
    dir: string,
    messages: ScannedMessage[],
    index: SizeIndex,
    log: Logger,
  ): Promise<Set<ScannedMessage>> {
    const unreadable = new Set<ScannedMessage>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < messages.length) {
        const message = messages[next++] as ScannedMessage;
        try {
          const measure = await measureFile(join(dir, 'cur', message.file.name));
          message.size = measure.size;
          message.isVerbatim = measure.isVerbatim;
          index.set(message.file.base, measure);
        } catch (error) {
          log.warn({ file: message.file.name, err: String(error) }, 'message skipped: unreadable');
          unreadable.add(message);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#measureConcurrency, messages.length) }, worker));
    return unreadable;
  }
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

async function ensureMaildir(dir: string): Promise<void> {
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
}

/** Moves delivered messages from `new/` to `cur/` (each rename is atomic: a message is in one place or the other). */
async function moveNewToCur(dir: string, log: Logger): Promise<void> {
  const entries = await readdir(join(dir, 'new'), { withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isFile() || entry.name.startsWith('.') || UNSAFE_NAME.test(entry.name)) continue;
    try {
      await rename(join(dir, 'new', entry.name), join(dir, 'cur', curNameFor(entry.name)));
    } catch (error) {
      if (isErrno(error, 'ENOENT')) continue; // taken by another program meanwhile
      log.error({ file: entry.name, err: String(error) }, 'cannot move message from new/ to cur/');
      throw new Pop3Error('mailbox unavailable, try again later', RespCode.sysTemp, { cause: error });
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

const ignore = (): void => {};

/** open(2) for reading, with the callback API: one thread-pool trip and no FileHandle to track. */
function openForReading(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    openCallback(path, 'r', (error, fd) => {
      if (error === null) resolve(fd);
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

async function measureFile(path: string): Promise<{ size: number; isVerbatim: boolean }> {
  const handle = await open(path, 'r');
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

class MaildirMaildrop implements Maildrop {
  readonly messages: readonly MessageInfo[];
  readonly #dir: string;
  readonly #byUid: Map<string, ScannedMessage>;
  readonly #lock: MaildropLock;
  readonly #log: Logger;

  constructor(dir: string, scanned: ScannedMessage[], lock: MaildropLock, log: Logger) {
    this.#dir = dir;
    this.#lock = lock;
    this.#log = log;
    this.#byUid = new Map(scanned.map((m) => [m.uid, m]));
    this.messages = scanned.map((m) => ({ uid: m.uid, size: m.size, isVerbatim: m.isVerbatim }));
  }

  async read(uid: string, options: ReadOptions): Promise<MessageContent> {
    const message = this.#message(uid);
    const fd = await this.#withCurrentName(message, openForReading);
    if (fd === undefined) throw new MessageGoneError();
    const chunkBytes = options.chunkBytes ?? 65_536;
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

  async commit(changes: MaildropChanges): Promise<CommitResult> {
    const notDeleted: string[] = [];
    for (const uid of changes.retrieved) {
      const message = this.#message(uid);
      if (withFlag(message.file, 'S') === message.file.name) continue;
      try {
        // The target is computed when the action runs: after a rename by another program, from the new name.
        await this.#withCurrentName(message, async (path) => {
          const target = join(this.#dir, 'cur', withFlag(message.file, 'S'));
          if (target === path) return;
          // rename(2) would silently replace a file already there: a duplicate of this base, another message.
          if (await exists(target)) {
            await access(path); // ENOENT: renamed meanwhile, looked up again
            throw new Error(`${target} already exists`);
          }
          await rename(path, target);
        });
      } catch (error) {
        this.#log.warn({ file: message.file.name, err: String(error) }, 'cannot mark message seen');
      }
    }
    for (const uid of changes.deleted) {
      const message = this.#message(uid);
      try {
        // A message that is already gone counts as deleted.
        await this.#withCurrentName(message, (path) => unlink(path));
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
    const names = await readdir(cur);
    const renamed = names.find(
      (n) => n !== message.file.name && parseMaildirName(n).base === message.file.base,
    );
    if (renamed === undefined) return undefined;
    message.file = parseMaildirName(renamed);
    return action(join(cur, renamed));
  }
}
