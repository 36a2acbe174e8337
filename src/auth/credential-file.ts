import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { asError, isErrno } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { parsePasswdFile, type PasswdFileProblem } from './passwd-file-format.js';
import type { StoredPassword } from './passwords/types.js';
import type { UserPolicyOverrides } from '../policy.js';

/**
 * A file of `name:{SCHEME}secret` lines (Dovecot's passwd-file form), held in memory, re-read when
 * it changes, and edited in place: the users file and the admins file are both one of these.
 *
 * Edits are applied one at a time (two changes arriving together never lose one another), keep
 * every other line as it was (comments included), and reach the disk atomically before they
 * take effect: written to a temporary file in the same folder, flushed, renamed over the file, and
 * the folder flushed. A failed write changes neither the file nor the entries in memory.
 */
export class CredentialFile {
  readonly path: string;
  readonly #label: string;
  readonly #logger: Logger;
  /** Logs at debug level only: another process reports on the same file. */
  readonly #isQuiet: boolean;
  #entries: ReadonlyMap<string, StoredPassword> = new Map();
  #policies: ReadonlyMap<string, UserPolicyOverrides> = new Map();
  /** The text last loaded and its problems: a reload that finds the same text logs nothing. */
  #loaded: { readonly text: string; readonly problems: readonly PasswdFileProblem[] } | undefined;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  /**
   * `label` names the file in logs: `users`, `admins`. `isQuiet`: log at debug level only (a
   * worker's copy, which the primary reports on).
   */
  constructor(
    path: string,
    options: { readonly label: string; readonly logger?: Logger; readonly isQuiet?: boolean },
  ) {
    this.path = path;
    this.#label = options.label;
    this.#logger = options.logger ?? silentLogger;
    this.#isQuiet = options.isQuiet ?? false;
  }

  get entries(): ReadonlyMap<string, StoredPassword> {
    return this.#entries;
  }

  /** The entries' own policies (`poplar_*` extra fields), for those that have one; replaced with `entries`. */
  get policies(): ReadonlyMap<string, UserPolicyOverrides> {
    return this.#policies;
  }

  /** Reads the file; resolves to the problems found. Rejects only if the file cannot be read. */
  async reload(): Promise<readonly PasswdFileProblem[]> {
    const text = await readFile(this.path, 'utf8');
    // The file watch and a reload request often both follow one change: the second finds nothing new.
    if (text === this.#loaded?.text) return this.#loaded.problems;
    const { users, policies, problems } = parsePasswdFile(text);
    const log = this.#isQuiet ? this.#logger.debug.bind(this.#logger) : undefined;
    for (const p of problems) {
      (log ?? this.#logger.warn.bind(this.#logger))(
        { file: this.path, line: p.line, problem: p.message },
        `${this.#label} file line skipped`,
      );
    }
    this.#entries = users;
    this.#policies = policies;
    this.#loaded = { text, problems };
    const info = log ?? this.#logger.info.bind(this.#logger);
    const warn = log ?? this.#logger.warn.bind(this.#logger);
    info({ file: this.path, [this.#label]: users.size }, `${this.#label} loaded`);
    // Loaded, but no one can log in with them: an empty {PLAIN} secret is never accepted.
    let usable = 0;
    for (const [name, stored] of users) {
      if (!stored.scheme.isPlaintext || stored.data !== '') usable += 1;
      else
        warn(
          { file: this.path, user: name },
          `${this.#label} file entry with an empty {PLAIN} password: ${name} can never log in`,
        );
    }
    if (usable === 0) warn({ file: this.path }, `${this.#label} file has no usable entry: no one can log in`);
    return problems;
  }

  /** Re-reads the file whenever it (or its directory entry) changes. */
  watch(): void {
    if (this.#watcher !== undefined) return;
    const name = basename(this.path);
    this.#watcher = watch(dirname(this.path), (_event, changed) => {
      if (changed !== null && changed !== name) return;
      clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => {
        this.reload().catch((error: unknown) => {
          const fields = { file: this.path, err: asError(error) };
          if (this.#isQuiet) this.#logger.debug(fields, `${this.#label} file not reloaded`);
          else this.#logger.error(fields, `${this.#label} file not reloaded`);
        });
      }, 50);
    });
    this.#watcher.on('error', (error) => {
      this.#logger.error({ file: this.path, err: error }, `${this.#label} file watch failed`);
    });
  }

  close(): void {
    clearTimeout(this.#debounce);
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  /**
   * Sets `name`'s secret field (a `{SCHEME}...` string), adding the line if the name is new. The
   * other fields of an existing line are kept, unless the line is unusable. With `onlyIfNew`, an
   * existing name is left alone. Resolves to what happened.
   */
  async set(
    name: string,
    field: string,
    options: { readonly onlyIfNew?: boolean } = {},
  ): Promise<'added' | 'changed' | 'exists'> {
    if (/[:\r\n]/.test(field) || /[:\r\n]/.test(name)) {
      throw new Error('names and secrets in a passwd-file cannot contain ":" or line breaks');
    }
    let outcome: 'added' | 'changed' | 'exists' = 'added';
    await this.#edit((lines) => {
      const i = lines.findIndex((line) => isLineOf(line, name));
      if (i === -1) return [...lines, `${name}:${field}`];
      const isDefined = parsePasswdFile(lines.join('\n')).users.has(name);
      if (options.onlyIfNew === true && isDefined) {
        outcome = 'exists';
        return undefined;
      }
      outcome = isDefined ? 'changed' : 'added';
      const line = (lines[i] ?? '').replace(/\r$/, '');
      // A line the parser skips (damaged, hostile: a NUL in a later field, say) is replaced
      // whole: patched, it could stay unusable while the change is reported as made.
      if (!parsePasswdFile(line).users.has(name)) return lines.with(i, `${name}:${field}`);
      const fields = line.split(':');
      fields[1] = field;
      return lines.with(i, fields.join(':'));
    });
    return outcome;
  }

  /**
   * Removes `name`. With `keepOne`, refuses to remove the last usable entry (the server must not
   * lock its operator out). Nothing is written unless the name is removed.
   */
  async remove(
    name: string,
    options: { readonly keepOne?: boolean } = {},
  ): Promise<'removed' | 'unknown' | 'last'> {
    let outcome: 'removed' | 'unknown' | 'last' = 'removed';
    await this.#edit((lines) => {
      const kept = lines.filter((line) => !isLineOf(line, name));
      if (kept.length === lines.length) {
        outcome = 'unknown';
        return undefined;
      }
      if (options.keepOne === true && parsePasswdFile(kept.join('\n')).users.size === 0) {
        outcome = 'last';
        return undefined;
      }
      return kept;
    });
    return outcome;
  }

  /** Runs one edit after the previous ones: read, change, write atomically, reload. */
  #edit(change: (lines: readonly string[]) => readonly string[] | undefined): Promise<void> {
    const task = async (): Promise<void> => {
      let text = '';
      try {
        text = await readFile(this.path, 'utf8');
      } catch (error) {
        if (!isErrno(error, 'ENOENT')) throw error;
      }
      const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
      const changed = change(lines);
      if (changed === undefined) return;
      await writeAtomically(this.path, changed.length === 0 ? '' : `${changed.join('\n')}\n`);
      await this.reload();
    };
    const result = this.#queue.then(task);
    this.#queue = result.catch(() => undefined);
    return result;
  }
}

/**
 * Whether `line` is `name`'s: its name field (before the first `:`) is exactly `name`. A prefix
 * test would let a name that contains `:` match a line by its secret field.
 */
function isLineOf(line: string, name: string): boolean {
  const colon = line.indexOf(':');
  return colon !== -1 && line.slice(0, colon) === name;
}

/**
 * Replaces a file so that a crash at any moment leaves either the old or the new content, mode 0600,
 * never writing through a name already taken. `isDurable: false` skips the fsyncs of the file and its
 * folder: for a file whose loss in a crash costs nothing (a record of last uses, say).
 */
export async function writeAtomically(
  path: string,
  content: string,
  { isDurable = true }: { readonly isDurable?: boolean } = {},
): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    // 'wx': never through something already at that name (a link planted next to the file).
    await writeFile(tmp, content, { mode: 0o600, flush: isDurable, flag: 'wx' });
    await rename(tmp, path);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
  if (!isDurable) return;
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
