import type { Dirent } from 'node:fs';
import { join } from 'node:path';
import { asError, isErrno, Pop3Error, RespCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import { hasControlCharacter } from '../../text.js';
import { curNameFor, parseMaildirName, uidFor, type MaildirName } from './filename.js';
import { pauser, type MaildirFs } from './fs.js';
import { isFirstReport } from './log-once.js';
import { MEASURE_BUFFER_BYTES, measureMessageFile } from './read.js';
import { SizeIndex, type ListedMessage } from './size-index.js';
import { assignUidls, warnOnce } from './uidl-map.js';
import { loadUidlMap } from './uidl-migrate.js';
import { listMessageFolder } from './undecodable.js';

/** A message as the scan found it; `file` follows renames by other programs during the session. */
export interface ScannedMessage {
  file: MaildirName;
  uid: string;
  size: number;
  isVerbatim: boolean;
}

export interface ScanOptions {
  readonly fs: MaildirFs;
  readonly log: Logger;
  /** Files moved or measured at once through the thread pool (blocking calls go one at a time). */
  readonly concurrency: number;
  /** With blocking calls: the longest run of them before other sessions get a turn. */
  readonly burstMs: number;
}

/**
 * The first step of a session, with the maildrop's lock held: moves `new/` into `cur/`, then takes
 * the listing of `cur/` from the index when `cur/` has not changed since it was written (see
 * `SizeIndex.listingFor`), or else lists `cur/` in delivery order and finds every size (from `,W=`,
 * the size index, or by reading the file once) and writes the index again. A file that cannot be
 * read is left out, with a warning.
 */
export async function scanMaildrop(dir: string, options: ScanOptions): Promise<ScannedMessage[]> {
  const { fs, log } = options;
  const concurrency = fs.isBlocking ? 1 : options.concurrency;
  const pause = pauser(fs, options.burstMs);
  await moveNewToCur(dir, log, fs, { concurrency, pause });
  const cur = join(dir, 'cur');
  // The clock first, then the mtime, then the entries: a change after the stat changes the mtime
  // again, and the listing is only trusted if that mtime was old enough at this clock reading.
  const checkedAtMs = Date.now();
  const curMtimeNs = await fs.mtimeNs(cur);
  const index = await SizeIndex.load(dir, fs);
  // Never opened by Poplar (no size index): another server's UIDLs are converted, once.
  const kept = await loadUidlMap(dir, { fs, log, mayMigrate: !index.wasFound });
  // Two files with one base (a copy left in `new/` and `cur/`, say) would share a uid: the later one gets a suffix.
  const uniqueUids = (messages: ScannedMessage[]): ScannedMessage[] =>
    assignUidls(messages, kept, uidFor, (m, uidl) => {
      warnOnce(log, join(dir, m.file.base), { uidl }, 'UIDL clash: the message gets a Poplar UIDL');
    });
  const listed = index.listingFor(curMtimeNs);
  if (listed !== undefined) return uniqueUids(listed.map(fromListing));
  const entries = await listMessageFolder(cur, fs, log);
  logSpecialFiles(cur, entries, log);
  const found: ScannedMessage[] = [];
  const toMeasure: ScannedMessage[] = [];
  for (const entry of entries) {
    if (!isMessageEntry(entry)) continue;
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
  // Two files with one base (the later one's UIDL gets a suffix) would share one index entry: measure each of them.
  const seen = new Set<string>();
  const shared = new Set<string>();
  for (const m of found) (seen.has(m.file.base) ? shared : seen).add(m.file.base);
  for (const m of found) {
    if (shared.has(m.file.base) && m.file.virtualSize === undefined && m.size >= 0) toMeasure.push(m);
  }
  const unreadable = await measureAll(dir, toMeasure, index, options.log, fs, { concurrency, pause });
  const messages = found.filter((m) => !unreadable.has(m));
  messages.sort(byDelivery);
  index.setListing(
    messages.map((m) => ({ name: m.file.name, size: m.size, isVerbatim: m.isVerbatim })),
    { curMtimeNs, checkedAtMs },
  );
  try {
    await index.save();
  } catch (error) {
    log.warn({ err: asError(error) }, 'size index not saved');
  }
  return uniqueUids(messages);
}

function fromListing(m: ListedMessage): ScannedMessage {
  const file = parseMaildirName(m.name);
  return { file, uid: uidFor(file.base), size: m.size, isVerbatim: m.isVerbatim };
}

/** Only regular files are messages: no dotfiles, folders, symbolic links or devices, and no name with a control character (it would break the size index or logs). */
function isMessageEntry(entry: { name: string; isFile(): boolean }): boolean {
  return entry.isFile() && !entry.name.startsWith('.') && !hasControlCharacter(entry.name);
}

/**
 * Logs, once per file, a FIFO, socket or device among the messages: skipped (a FIFO would block
 * the reader), but the operator should know it is there.
 */
function logSpecialFiles(folder: string, entries: readonly Dirent[], log: Logger): void {
  for (const entry of entries) {
    const isSpecial =
      entry.isFIFO() || entry.isSocket() || entry.isCharacterDevice() || entry.isBlockDevice();
    if (!isSpecial || entry.name.startsWith('.')) continue;
    const path = join(folder, entry.name);
    if (isFirstReport(path)) log.warn({ file: path }, 'message skipped: not a regular file');
  }
}

/** How a run of file calls goes: how many at once, and a pause between blocking bursts. */
interface Pace {
  readonly concurrency: number;
  pause(): Promise<void> | undefined;
}

/** Runs `action` on every item, `concurrency` at a time, pausing before each. */
async function forEachPaced<T>(
  items: readonly T[],
  pace: Pace,
  action: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await pace.pause();
      await action(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(pace.concurrency, items.length) }, worker));
}

/** Reads the messages whose size is unknown; returns those that could not be read. */
async function measureAll(
  dir: string,
  messages: readonly ScannedMessage[],
  index: SizeIndex,
  log: Logger,
  fs: MaildirFs,
  pace: Pace,
): Promise<Set<ScannedMessage>> {
  const unreadable = new Set<ScannedMessage>();
  // One buffer per file read at once, reused from file to file.
  const buffers: Buffer[] = [];
  await forEachPaced(messages, pace, async (message) => {
    const buffer = buffers.pop() ?? Buffer.allocUnsafe(MEASURE_BUFFER_BYTES);
    try {
      const measure = await measureMessageFile(fs, join(dir, 'cur', message.file.name), buffer);
      message.size = measure.size;
      message.isVerbatim = measure.isVerbatim;
      index.set(message.file.base, measure);
    } catch (error) {
      log.warn({ file: message.file.name, err: asError(error) }, 'message skipped: unreadable');
      unreadable.add(message);
    } finally {
      buffers.push(buffer);
    }
  });
  return unreadable;
}

function byDelivery(a: ScannedMessage, b: ScannedMessage): number {
  const ta = a.file.deliveredAt ?? Number.MAX_SAFE_INTEGER;
  const tb = b.file.deliveredAt ?? Number.MAX_SAFE_INTEGER;
  if (ta !== tb) return ta - tb;
  return a.file.base < b.file.base ? -1 : a.file.base > b.file.base ? 1 : 0;
}

/** Moves delivered messages from `new/` to `cur/` (each rename is atomic: a message is in one place or the other). */
async function moveNewToCur(dir: string, log: Logger, fs: MaildirFs, pace: Pace): Promise<void> {
  const entries = await listMessageFolder(join(dir, 'new'), fs, log);
  logSpecialFiles(join(dir, 'new'), entries, log);
  const names = entries.filter(isMessageEntry).map((e) => e.name);
  await forEachPaced(names, pace, async (name) => {
    try {
      await fs.rename(join(dir, 'new', name), join(dir, 'cur', curNameFor(name)));
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return; // taken by another program meanwhile
      log.error({ file: name, err: asError(error) }, 'cannot move message from new/ to cur/');
      throw new Pop3Error('mailbox unavailable, try again later', RespCode.sysTemp, {
        cause: error,
        text: 'mailboxUnavailable',
      });
    }
  });
}
