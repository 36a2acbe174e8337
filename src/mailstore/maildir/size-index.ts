import { join } from 'node:path';
import { isErrno } from '../../errors.js';
import { hasControlCharacter } from '../../text.js';
import { isTemporaryOf, replaceFile, threadPoolFs, type MaildirFs } from './fs.js';
import { UIDL_MAP_FILE } from './uidl-map.js';

export const INDEX_FILE = '.poplar-sizes';
const MAGIC = 'poplar-sizes';
/** The sizes-only format of earlier versions: still read, so an upgrade does not measure every message again. */
const HEADER_V1 = `${MAGIC} 1`;

/**
 * The largest index file read. One line per message, about 80 bytes: 64 MiB is some 800,000
 * messages. A bigger file (damaged, or planted) is not read: the maildrop is scanned and measured
 * as if there were none, and the index written again.
 */
export const MAX_INDEX_BYTES = 64 * 1024 * 1024;

/**
 * How much older than the clock reading taken just before it was stat()ed `cur/`'s mtime must be
 * for the listing to be trusted. A change made in the same timestamp tick as the last one leaves
 * the mtime as it was (1 s ticks on some filesystems, NFS included; a few ms on Linux's own); a
 * directory last changed this long before it was stat()ed changes its mtime with any later change.
 * It also covers this much clock skew between this machine and a file server (Dovecot's
 * MAILDIR_SYNC_SECS, 1 s, counted in whole seconds).
 */
export const LISTING_SAFETY_MARGIN_MS = 2_000;

export interface IndexEntry {
  /** Octets as POP3 sends them (CRLF line ends), before byte-stuffing. */
  readonly size: number;
  /** The file is already exactly what RETR sends: CRLF line ends, a final CRLF, no line starting with `.`. */
  readonly isVerbatim: boolean;
}

/** A message of `cur/` as the listing records it: its whole file name (flags included). */
export interface ListedMessage extends IndexEntry {
  readonly name: string;
}

/** When the listing was taken: `cur/`'s mtime, and the clock read just before that stat. */
export interface ListingStamp {
  readonly curMtimeNs: bigint;
  readonly checkedAtMs: number;
}

const baseOf = (name: string): string => {
  const colon = name.indexOf(':');
  return colon === -1 ? name : name.slice(0, colon);
};

/** A name the scan itself could have listed: no dotfile, no path, no control character. */
const isListableName = (name: string): boolean =>
  name.length > 0 && !name.startsWith('.') && !name.includes('/') && !hasControlCharacter(name);

/**
 * A maildrop's index: message sizes keyed by base name (Maildir files never change content, only
 * their flags, which are not part of the base) and, after a scan, the listing of `cur/` in delivery
 * order with the directory's mtime. A login that finds `cur/` with that same mtime, old enough to be
 * sure (see {@link LISTING_SAFETY_MARGIN_MS}), takes the listing as it is, with no directory scan.
 * File: a header `poplar-sizes 2 <cur mtime ns> <clock ms>` (`- -` without a listing), then one line
 * per message, `size verbatim name`. It is a cache: a missing, old or damaged file only costs a scan.
 */
export class SizeIndex {
  readonly #path: string;
  /** Sizes by base, built from the lines read when first asked for (a login the listing serves never asks). */
  #entries: Map<string, IndexEntry> | undefined;
  /** The lines read, in order. */
  #lines: readonly ListedMessage[] = [];
  #listing: readonly ListedMessage[] | undefined;
  #stamp: ListingStamp | undefined;
  readonly #fs: MaildirFs;
  #isDirty = false;
  #wasFound = false;

  private constructor(dir: string, fs: MaildirFs) {
    this.#path = join(dir, INDEX_FILE);
    this.#fs = fs;
  }

  /** Reads the index of the maildrop in `dir`. */
  static async load(dir: string, fs: MaildirFs = threadPoolFs): Promise<SizeIndex> {
    const index = new SizeIndex(dir, fs);
    let text: string;
    try {
      text = await fs.readText(index.#path, MAX_INDEX_BYTES);
    } catch (error) {
      index.#wasFound = !isErrno(error, 'ENOENT');
      return index;
    }
    index.#wasFound = true;
    const header = text.slice(0, Math.max(0, text.indexOf('\n')));
    const stamp = header === HEADER_V1 ? undefined : parseHeader(header);
    if (stamp === null) return index;
    const lines: ListedMessage[] = [];
    // A listing written whole ends with a newline: one cut short is not trusted, nor one with a damaged line.
    let isListingSound = stamp !== undefined && text.endsWith('\n');
    for (let start = header.length + 1; start < text.length;) {
      let end = text.indexOf('\n', start);
      if (end === -1) end = text.length;
      const entry = parseLine(text.slice(start, end));
      start = end + 1;
      if (entry === undefined) isListingSound = false;
      else lines.push(entry);
    }
    index.#lines = lines;
    if (isListingSound) {
      index.#listing = lines;
      index.#stamp = stamp;
    }
    return index;
  }

  /** Whether the file was there (even damaged): the maildrop was opened by Poplar before. */
  get wasFound(): boolean {
    return this.#wasFound;
  }

  #sizes(): Map<string, IndexEntry> {
    this.#entries ??= new Map(
      this.#lines.map((m) => [baseOf(m.name), { size: m.size, isVerbatim: m.isVerbatim }]),
    );
    return this.#entries;
  }

  get(base: string): IndexEntry | undefined {
    return this.#sizes().get(base);
  }

  set(base: string, entry: IndexEntry): void {
    this.#sizes().set(base, entry);
    this.#isDirty = true;
  }

  /** Forgets every message not in `present`. */
  retain(present: ReadonlySet<string>): void {
    const entries = this.#sizes();
    for (const base of entries.keys()) {
      if (!present.has(base)) {
        entries.delete(base);
        this.#isDirty = true;
      }
    }
  }

  /**
   * The listing of `cur/` if it can be trusted now that `cur/`'s mtime is `curMtimeNs`: the same
   * mtime as when it was taken, and that mtime was older than the clock by the safety margin then
   * (a later change in the same tick would not have changed it).
   */
  listingFor(curMtimeNs: bigint): readonly ListedMessage[] | undefined {
    const stamp = this.#stamp;
    if (stamp === undefined || stamp.curMtimeNs !== curMtimeNs) return undefined;
    const trustedBeforeNs = BigInt(stamp.checkedAtMs - LISTING_SAFETY_MARGIN_MS) * 1_000_000n;
    return curMtimeNs <= trustedBeforeNs ? this.#listing : undefined;
  }

  /** Records a scan of `cur/`: its messages in delivery order, and when it was taken. The sizes are the listing's. */
  setListing(listing: readonly ListedMessage[], stamp: ListingStamp): void {
    this.#lines = listing;
    this.#entries = undefined;
    this.#listing = listing;
    this.#stamp = stamp;
    this.#isDirty = true;
  }

  /** Writes the index if it changed: to a temporary file, then renamed over the old one. */
  async save(): Promise<void> {
    if (!this.#isDirty) return;
    const stamp = this.#stamp;
    const parts = [
      stamp === undefined ? `${MAGIC} 2 - -` : `${MAGIC} 2 ${stamp.curMtimeNs} ${stamp.checkedAtMs}`,
    ];
    if (this.#listing === undefined) {
      for (const [base, e] of this.#sizes()) parts.push(`${e.size} ${e.isVerbatim ? '1' : '0'} ${base}`);
    } else {
      for (const m of this.#listing) parts.push(`${m.size} ${m.isVerbatim ? '1' : '0'} ${m.name}`);
    }
    await replaceFile(this.#fs, this.#path, `${parts.join('\n')}\n`);
    this.#isDirty = false;
  }
}

const DECIMAL = /^(0|[1-9][0-9]{0,20})$/;

/** The header's stamp; undefined for `- -` (no listing), null for anything else (not an index). */
function parseHeader(header: string): ListingStamp | undefined | null {
  const fields = header.split(' ');
  if (fields.length !== 4 || fields[0] !== MAGIC || fields[1] !== '2') return null;
  const [mtime = '', clock = ''] = fields.slice(2);
  if (mtime === '-' && clock === '-') return undefined;
  if (!DECIMAL.test(mtime) || !DECIMAL.test(clock)) return null;
  const checkedAtMs = Number(clock);
  return Number.isSafeInteger(checkedAtMs) ? { curMtimeNs: BigInt(mtime), checkedAtMs } : null;
}

/** One `size verbatim name` line, or undefined if it is damaged. */
function parseLine(line: string): ListedMessage | undefined {
  const a = line.indexOf(' ');
  const b = line.indexOf(' ', a + 1);
  if (a <= 0 || b !== a + 2) return undefined;
  const size = Number(line.slice(0, a));
  const verbatim = line.charCodeAt(a + 1);
  if (!Number.isSafeInteger(size) || size < 0 || (verbatim !== 0x30 && verbatim !== 0x31)) return undefined;
  const name = line.slice(b + 1);
  return isListableName(name) ? { name, size, isVerbatim: verbatim === 0x31 } : undefined;
}

/**
 * Deletes the temporary files `replaceFile` left for these files of the maildir (the size index,
 * `.poplar-uidl` and the others `files` names): saves cut short by a crash (or a full disk). Call it
 * with the maildrop's lock held: only a holder writes them. Resolves to the names in the folder, or
 * undefined if it cannot be read.
 */
export async function removeInterruptedSaves(
  dir: string,
  fs: MaildirFs,
  files: readonly string[] = [],
): Promise<string[] | undefined> {
  const names = await fs.readdir(dir).catch(() => undefined);
  const saved = [INDEX_FILE, UIDL_MAP_FILE, ...files];
  for (const name of names ?? []) {
    if (saved.some((file) => isTemporaryOf(name, file))) {
      await fs.unlink(join(dir, name)).catch(() => undefined);
    }
  }
  return names;
}
