import { join } from 'node:path';
import { asError, isErrno } from '../../errors.js';
import type { Logger } from '../../log.js';
import { hasControlCharacter } from '../../text.js';
import { replaceFile, type MaildirFs } from './fs.js';
import { isFirstReport } from './log-once.js';

/** The maildrop's delete and EXPIRE state, in the user's folder (see docs/delete-and-expire.md). */
export const POLICY_STATE_FILE = '.poplar-policy';
const HEADER = 'poplar-policy 1';

/**
 * The largest state file read or written: one line per hidden, kept or retrieved message, some 60
 * bytes, so about 250,000 of them. A bigger file is not read (logged, and treated as empty: hidden
 * mail shows again, nothing is deleted); a state that would grow past it is not written (the
 * deletion that needed it is refused and the messages stay).
 */
export const MAX_POLICY_STATE_BYTES = 16 * 1024 * 1024;

/** Longest base name kept (a file name is at most 255 bytes on the usual file systems). */
const MAX_BASE_LENGTH = 255;
/** keep-days and EXPIRE terms above this are refused as damage (a century). */
export const MAX_POLICY_DAYS = 36_500;

export const DAY_MS = 86_400_000;

/** What the state says of one message, by its base name. */
export type StateEntry =
  /** Deleted under `hide`: never listed again. */
  | { readonly kind: 'hidden' }
  /** Deleted under `keep-days`: not listed, removed for good `days` days after `atMs`. */
  | { readonly kind: 'kept'; readonly atMs: number; readonly days: number }
  /** First retrieved at `atMs` (EXPIRE N): listed until it is N days old. */
  | { readonly kind: 'retrieved'; readonly atMs: number };

/** A base name as the scan can find it: what the state is keyed by. */
export function isStateBase(base: string): boolean {
  return (
    base.length > 0 &&
    base.length <= MAX_BASE_LENGTH &&
    !base.startsWith('.') &&
    !base.includes('/') &&
    !base.includes(':') &&
    !hasControlCharacter(base)
  );
}

/** Whether `now` is at or past `days` days after `atMs`. */
export const isPast = (atMs: number, days: number, now: number): boolean => now >= atMs + days * DAY_MS;

/**
 * The `.poplar-policy` file of one maildrop: which messages POP3 no longer lists (hidden, or kept
 * until a sweep), and when messages were first retrieved (EXPIRE N). Read at open and written
 * while the maildrop's lock is held. The file is hostile input: a damaged or oversized one is
 * logged once and treated as empty, which can only make hidden mail visible again, never delete it.
 */
export class PolicyState {
  readonly #dir: string;
  readonly #fs: MaildirFs;
  readonly #entries = new Map<string, StateEntry>();
  /** Whether a file is (or may be) on disk: an empty state with none needs no write. */
  #isOnDisk: boolean;

  private constructor(dir: string, fs: MaildirFs, isOnDisk: boolean) {
    this.#dir = dir;
    this.#fs = fs;
    this.#isOnDisk = isOnDisk;
  }

  /** A state with nothing in it and no file: the maildrop of a user with no policy state. */
  static empty(dir: string, fs: MaildirFs): PolicyState {
    return new PolicyState(dir, fs, false);
  }

  /**
   * Reads the state of the maildrop in `dir`. A missing file is an empty state; so is a damaged
   * one, logged once (it is replaced at the next write).
   */
  static async load(dir: string, fs: MaildirFs, log: Logger): Promise<PolicyState> {
    const path = join(dir, POLICY_STATE_FILE);
    let read: Awaited<ReturnType<MaildirFs['readTextStat']>>;
    try {
      // Not followed: a symbolic link planted here is damage, not a state file elsewhere.
      if ((await fs.lstat(path)).isSymbolicLink()) throw new Error('a symbolic link');
      read = await fs.readTextStat(path, MAX_POLICY_STATE_BYTES);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return PolicyState.empty(dir, fs);
      logDamage(log, path, `${path} unreadable`, asError(error));
      return new PolicyState(dir, fs, true);
    }
    const state = new PolicyState(dir, fs, true);
    const problem = state.#parse(read.text);
    if (problem !== undefined) {
      state.#entries.clear();
      logDamage(log, path, `${path} ${read.stats.size} ${read.stats.mtimeMs}`, new Error(problem));
    }
    return state;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(base: string): StateEntry | undefined {
    return this.#entries.get(base);
  }

  set(base: string, entry: StateEntry): void {
    this.#entries.set(base, entry);
  }

  delete(base: string): boolean {
    return this.#entries.delete(base);
  }

  /** Whether POP3 leaves the message out of its listing. */
  isHidden(base: string): boolean {
    const kind = this.#entries.get(base)?.kind;
    return kind === 'hidden' || kind === 'kept';
  }

  entries(): IterableIterator<[string, StateEntry]> {
    return this.#entries.entries();
  }

  /**
   * Writes the state: a temporary file in the same folder, fsync'ed, renamed over the old one, and
   * the folder fsync'ed; an empty state removes the file. Resolves once it is on disk; rejects if
   * it was not written (the file on disk is then as it was).
   */
  async save(): Promise<void> {
    const path = join(this.#dir, POLICY_STATE_FILE);
    if (this.#entries.size === 0) {
      if (!this.#isOnDisk) return;
      try {
        await this.#fs.unlink(path);
      } catch (error) {
        if (!isErrno(error, 'ENOENT')) throw error;
      }
      this.#isOnDisk = false;
      return;
    }
    const text = this.#serialise();
    if (Buffer.byteLength(text) > MAX_POLICY_STATE_BYTES) {
      throw new Error(`${path} would be bigger than ${MAX_POLICY_STATE_BYTES} bytes`);
    }
    await replaceFile(this.#fs, path, text, { synced: true });
    this.#isOnDisk = true;
    // The rename is done, and either state is safe: a folder that cannot be fsync'ed (some file
    // systems refuse it) leaves at worst the old state after a power loss.
    await this.#fs.syncFolder(this.#dir).catch(() => undefined);
  }

  #serialise(): string {
    const lines = [HEADER];
    for (const [base, e] of this.#entries) {
      if (e.kind === 'hidden') lines.push(`H ${base}`);
      else if (e.kind === 'kept') lines.push(`K ${e.atMs} ${e.days} ${base}`);
      else lines.push(`R ${e.atMs} ${base}`);
    }
    return `${lines.join('\n')}\n`;
  }

  /** Fills the entries from the file's text; returns what is wrong with it, if anything. */
  #parse(text: string): string | undefined {
    if (!text.endsWith('\n')) return 'cut short (no final line end)';
    const lines = text.slice(0, -1).split('\n');
    if (lines[0] !== HEADER) return 'not a state file (bad header)';
    for (let i = 1; i < lines.length; i++) {
      const parsed = parseLine(lines[i] ?? '');
      if (parsed === undefined) return `line ${i + 1} is damaged`;
      if (this.#entries.has(parsed.base)) return `line ${i + 1} repeats a message`;
      this.#entries.set(parsed.base, parsed.entry);
    }
    return undefined;
  }
}

const TIME = /^(0|[1-9][0-9]{0,15})$/;
const DAYS = /^(0|[1-9][0-9]{0,4})$/;

/** One line: `H base`, `K atMs days base` or `R atMs base`; undefined if damaged. */
function parseLine(line: string): { base: string; entry: StateEntry } | undefined {
  const fields = line.split(' ');
  const [kind, a = '', b = ''] = fields;
  let base: string;
  let entry: StateEntry;
  if (kind === 'H') {
    base = fields.slice(1).join(' ');
    entry = { kind: 'hidden' };
  } else if (kind === 'K' && TIME.test(a) && DAYS.test(b) && Number(b) <= MAX_POLICY_DAYS) {
    base = fields.slice(3).join(' ');
    entry = { kind: 'kept', atMs: Number(a), days: Number(b) };
  } else if (kind === 'R' && TIME.test(a)) {
    base = fields.slice(2).join(' ');
    entry = { kind: 'retrieved', atMs: Number(a) };
  } else {
    return undefined;
  }
  return isStateBase(base) ? { base, entry } : undefined;
}

function logDamage(log: Logger, path: string, key: string, err: Error): void {
  if (!isFirstReport(key)) return;
  log.error({ file: path, err }, 'policy state damaged: ignored (hidden messages are listed again)');
}
