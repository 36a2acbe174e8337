import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger, type Logger } from '../../log.js';
import { writeAtomically } from '../credential-file.js';
import { isValidUserName } from '../../user.js';
import { hashPassword } from '../passwords/registry.js';
import {
  APP_PASSWORD_SCHEME,
  APP_PASSWORDS_FILE,
  APP_PASSWORDS_USED_FILE,
  formatAppPasswords,
  formatUses,
  labelProblem,
  MAX_APP_PASSWORDS,
  MAX_APP_PASSWORDS_FILE_BYTES,
  parseAppPasswords,
  parseUses,
  type AppPasswordEntry,
  type AppPasswordUse,
  type CheckableEntry,
} from './format.js';
import { newSecret, normalizeSecret } from './secret.js';

/** An app password as listed: never its secret nor its hash. */
export interface AppPasswordInfo {
  readonly label: string;
  readonly created: string;
  readonly lastUsed: AppPasswordUse | undefined;
}

/** An app password just made: the only time its secret exists outside the client. */
export interface NewAppPassword {
  readonly label: string;
  readonly secret: string;
  readonly created: string;
}

/** A refused change (a bad label, a label taken, too many, no such label): the monitor's status 0x04. */
export class AppPasswordError extends Error {
  override name = 'AppPasswordError';
}

export interface AppPasswordStoreOptions {
  /** The mail root now: the monitor may change it at run time. */
  readonly root: () => string;
  readonly logger?: Logger;
  /** The clock (tests give their own). */
  readonly now?: () => Date;
}

/** A file that is there but cannot be used: logged once, then read as empty. */
class DamagedFile extends Error {}

/** Damaged files already reported, by path, with the reason: a bound on how many are remembered. */
const MAX_REPORTED = 1_000;
/** An add or revoke is checked after its rename and made again if another node's change replaced it. */
const MAX_WRITE_TRIES = 3;

/**
 * A user's app passwords in `<root>/<user>/` (see format.ts): shared by every worker and every
 * node through the mail root, whatever the users backend. Changes of one user are made one at a
 * time in this process; each file is replaced atomically (a temporary file, then rename), the
 * passwords file with fsync.
 */
export class AppPasswordStore {
  readonly #root: () => string;
  readonly #logger: Logger;
  readonly #now: () => Date;
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #reported = new Map<string, string>();

  constructor(options: AppPasswordStoreOptions) {
    this.#root = options.root;
    this.#logger = options.logger ?? silentLogger;
    this.#now = options.now ?? (() => new Date());
  }

  /** The user's app passwords, ready to check; none for a bad name, a missing or a damaged file. */
  async read(user: string): Promise<readonly CheckableEntry[]> {
    if (!isValidUserName(user)) return [];
    const path = this.#path(user, APP_PASSWORDS_FILE);
    const entries = await this.#readChecked(path, parseAppPasswords);
    return entries ?? [];
  }

  /** Label, creation and last use of each app password, in creation order. */
  async list(user: string): Promise<AppPasswordInfo[]> {
    const entries = await this.read(user);
    const uses =
      (await this.#readChecked(this.#path(user, APP_PASSWORDS_USED_FILE), parseUses)) ??
      new Map<string, AppPasswordUse>();
    return entries.map(({ label, created, id }) => ({ label, created, lastUsed: uses.get(id) }));
  }

  /** Makes an app password: a new secret, stored hashed, returned this once. */
  async add(user: string, label: string): Promise<NewAppPassword> {
    checkUser(user);
    const problem = labelProblem(label);
    if (problem !== undefined) throw new AppPasswordError(problem);
    return this.#serially(user, async () => {
      const secret = newSecret();
      const entry: AppPasswordEntry = {
        id: randomBytes(8).toString('hex'),
        label,
        hash: await hashPassword(normalizeSecret(secret), APP_PASSWORD_SCHEME),
        created: this.#now().toISOString(),
      };
      await this.#change(
        user,
        (entries) => {
          if (entries.some((e) => e.label === label))
            throw new AppPasswordError(`${user} already has an app password labelled ${label}`);
          if (entries.length >= MAX_APP_PASSWORDS)
            throw new AppPasswordError(`${user} has ${MAX_APP_PASSWORDS} app passwords, the most allowed`);
          return [...entries, entry];
        },
        (entries) => entries.some((e) => e.id === entry.id),
      );
      return { label, secret, created: entry.created };
    });
  }

  /** Removes the app password with this label; resolves to false when there was none. */
  async revoke(user: string, label: string): Promise<boolean> {
    checkUser(user);
    return this.#serially(user, async () => {
      let isFound = false;
      await this.#change(
        user,
        (entries) => {
          isFound ||= entries.some((e) => e.label === label);
          return isFound ? entries.filter((e) => e.label !== label) : undefined;
        },
        (entries) => !entries.some((e) => e.label === label),
      );
      return isFound;
    });
  }

  /** Removes every app password of the user (a deleted user); resolves to how many there were. */
  async revokeAll(user: string): Promise<number> {
    checkUser(user);
    return this.#serially(user, async () => {
      const count = (await this.read(user)).length;
      for (const name of [APP_PASSWORDS_FILE, APP_PASSWORDS_USED_FILE]) {
        await unlink(this.#path(user, name)).catch(ignoreMissing);
      }
      return count;
    });
  }

  /**
   * Records a login with the app password `id` from `address`. Not fsynced: a last use lost in a
   * crash costs nothing. Two logins at the same instant on two nodes may keep only one of the two.
   */
  async recordUse(user: string, id: string, address: string, liveIds: readonly string[]): Promise<void> {
    checkUser(user);
    return this.#serially(user, async () => {
      const path = this.#path(user, APP_PASSWORDS_USED_FILE);
      const old = (await this.#readChecked(path, parseUses)) ?? new Map<string, AppPasswordUse>();
      const uses = new Map([...old].filter(([key]) => liveIds.includes(key) && key !== id));
      uses.set(id, { at: this.#now().toISOString(), address: address.slice(0, 64) });
      await writeAtomically(path, formatUses(uses), { isDurable: false });
    });
  }

  #path(user: string, name: string): string {
    return join(this.#root(), user, name);
  }

  /**
   * Applies `edit` to the entries on disk (undefined: nothing to write) and checks with `isDone`
   * that the file read back holds the change: another node's add or revoke renamed at the same
   * instant would otherwise have replaced it.
   */
  async #change(
    user: string,
    edit: (entries: readonly AppPasswordEntry[]) => readonly AppPasswordEntry[] | undefined,
    isDone: (entries: readonly AppPasswordEntry[]) => boolean,
  ): Promise<void> {
    const dir = join(this.#root(), user);
    await mkdir(dir, { mode: 0o700 }).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    });
    if (!(await lstat(dir)).isDirectory()) throw new Error(`${dir} is not a directory`);
    const path = join(dir, APP_PASSWORDS_FILE);
    for (let i = 0; i < MAX_WRITE_TRIES; i++) {
      const changed = edit(await this.read(user));
      if (changed === undefined) return;
      await writeAtomically(path, formatAppPasswords(changed));
      if (isDone(await this.read(user))) return;
    }
    throw new Error(`the app passwords of ${user} kept changing under this change`);
  }

  /** The parsed file; undefined when it is absent or damaged (logged once per file and reason). */
  async #readChecked<T>(path: string, parse: (text: string) => T | string): Promise<T | undefined> {
    let result: T | string;
    try {
      const text = await readBounded(path);
      if (text === undefined) {
        this.#reported.delete(path);
        return undefined;
      }
      result = parse(text);
    } catch (error) {
      if (!(error instanceof DamagedFile)) throw error;
      result = error.message;
    }
    if (typeof result !== 'string') {
      this.#reported.delete(path);
      return result;
    }
    if (this.#reported.get(path) !== result) {
      if (this.#reported.size >= MAX_REPORTED) this.#reported.clear();
      this.#reported.set(path, result);
      this.#logger.warn({ file: path, reason: result }, 'damaged app passwords file ignored');
    }
    return undefined;
  }

  /** Runs `task` after the user's earlier changes in this process. */
  #serially<T>(user: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(user) ?? Promise.resolve();
    const run = previous.then(task, task);
    const tail = run.catch(() => undefined);
    this.#queues.set(user, tail);
    void tail.then(() => {
      if (this.#queues.get(user) === tail) this.#queues.delete(user);
    });
    return run;
  }
}

function checkUser(user: string): void {
  if (!isValidUserName(user)) throw new AppPasswordError('invalid user name');
}

const ignoreMissing = (error: unknown): void => {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
};

const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The file's text; undefined when it (or the user's folder) does not exist. Throws DamagedFile for
 * a symbolic link, anything but a regular file, more than the bound, or bytes that are not UTF-8.
 */
async function readBounded(path: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(path, READ_FLAGS);
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'ELOOP') throw new DamagedFile('a symbolic link');
    throw error;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new DamagedFile('not a regular file');
    const buffer = Buffer.alloc(MAX_APP_PASSWORDS_FILE_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_APP_PASSWORDS_FILE_BYTES)
      throw new DamagedFile(`bigger than ${MAX_APP_PASSWORDS_FILE_BYTES} bytes`);
    try {
      return utf8.decode(buffer.subarray(0, length));
    } catch {
      throw new DamagedFile('not UTF-8');
    }
  } finally {
    await handle.close();
  }
}
