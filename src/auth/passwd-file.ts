import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { silentLogger, type Logger } from '../log.js';
import { safeEqual } from './compare.js';
import { hashPassword, parseStoredPassword, type StoredPassword } from './passwords.js';
import { apopDigest } from './static.js';
import type { ApopAuthRequest, AuthenticatorWithApop, AuthResult, PasswordAuthRequest } from './types.js';
import { isValidUserName } from './user-name.js';

export interface PasswdFileProblem {
  readonly line: number;
  readonly message: string;
}

export interface ParsedPasswdFile {
  readonly users: ReadonlyMap<string, StoredPassword>;
  readonly problems: readonly PasswdFileProblem[];
}

/**
 * Parses Dovecot's passwd-file form: `user:{SCHEME}data`, optionally followed by more
 * `:`-separated fields (uid, gid, home, ...) that Poplar ignores. Blank lines and lines starting
 * with `#` are skipped. A line that cannot be used is reported with its number and skipped.
 */
export function parsePasswdFile(text: string): ParsedPasswdFile {
  const users = new Map<string, StoredPassword>();
  const problems: PasswdFileProblem[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').replace(/\r$/, '');
    const number = i + 1;
    if (line.trim() === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon === -1) {
      problems.push({ line: number, message: 'expected user:{SCHEME}password' });
      continue;
    }
    const name = line.slice(0, colon);
    const rest = line.slice(colon + 1);
    const field = rest.split(':', 1)[0] ?? '';
    if (!isValidUserName(name)) {
      problems.push({ line: number, message: 'invalid user name' });
      continue;
    }
    if (users.has(name)) {
      problems.push({ line: number, message: `user ${name} already defined, line ignored` });
      continue;
    }
    const stored = parseStoredPassword(field);
    if (typeof stored === 'string') {
      problems.push({ line: number, message: stored });
      continue;
    }
    users.set(name, stored);
  }
  return { users, problems };
}

/**
 * Users from a passwd-file, re-read when the file changes and on {@link reload}. A file that
 * cannot be read leaves the previous users in force.
 */
export class PasswdFileAuthenticator implements AuthenticatorWithApop {
  readonly path: string;
  readonly #logger: Logger;
  #users: ReadonlyMap<string, StoredPassword> = new Map();
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  /** Verified for unknown users, so that a failure costs the same time whether or not the name exists. */
  #decoy: Promise<StoredPassword> | undefined;

  constructor(path: string, options: { readonly logger?: Logger } = {}) {
    this.path = path;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Reads the file; resolves to the problems found. Rejects only if the file cannot be read. */
  async reload(): Promise<readonly PasswdFileProblem[]> {
    const text = await readFile(this.path, 'utf8');
    const { users, problems } = parsePasswdFile(text);
    for (const p of problems)
      this.#logger.warn({ file: this.path, line: p.line, problem: p.message }, 'users file line skipped');
    this.#users = users;
    this.#logger.info({ file: this.path, users: users.size }, 'users loaded');
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
          this.#logger.error({ file: this.path, err: String(error) }, 'users file not reloaded');
        });
      }, 50);
    });
    this.#watcher.on('error', (error) => {
      this.#logger.error({ file: this.path, err: error.message }, 'users file watch failed');
    });
  }

  close(): void {
    clearTimeout(this.#debounce);
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  get userCount(): number {
    return this.#users.size;
  }

  async authenticate(request: PasswordAuthRequest): Promise<AuthResult> {
    const stored = this.#users.get(request.username);
    if (stored === undefined) {
      const decoy = await this.#decoyPassword();
      await decoy.scheme.verify(request.password, decoy.data);
      return { ok: false, reason: 'invalid' };
    }
    const isMatch = await stored.scheme.verify(request.password, stored.data);
    return isMatch ? { ok: true, user: { name: request.username } } : { ok: false, reason: 'invalid' };
  }

  /**
   * APOP is offered only when every user's password is stored as `{PLAIN}`: curl, for one, logs in
   * with APOP whenever the greeting offers it and never falls back to USER/PASS.
   */
  isApopOffered(): boolean {
    const users = [...this.#users.values()];
    return users.length > 0 && users.every((stored) => stored.scheme.isPlaintext);
  }

  /** APOP works only for users whose password is stored as `{PLAIN}`. */
  authenticateApop(request: ApopAuthRequest): Promise<AuthResult> {
    const stored = this.#users.get(request.username);
    // An empty secret would make the digest guessable from the greeting alone (and PASS refuses it).
    const secret = stored?.scheme.isPlaintext === true && stored.data !== '' ? stored.data : undefined;
    const isMatch =
      safeEqual(apopDigest(request.timestamp, secret ?? '\0'), request.digest) && secret !== undefined;
    return Promise.resolve(
      isMatch ? { ok: true, user: { name: request.username } } : { ok: false, reason: 'invalid' },
    );
  }

  #decoyPassword(): Promise<StoredPassword> {
    this.#decoy ??= hashPassword('decoy password').then(
      (field) => parseStoredPassword(field) as StoredPassword,
    );
    return this.#decoy;
  }
}
