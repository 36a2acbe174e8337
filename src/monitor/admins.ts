import { CredentialFile } from '../auth/credential-file.js';
import { hashPassword } from '../auth/passwords/registry.js';
import type { Logger } from '../log.js';

/** The C project's default admin and public token, kept for compatibility: demo mode on loopback only. */
export const DEFAULT_ADMIN = 'root';
export const DEFAULT_ADMIN_TOKEN = '123456789abcdef1';
/** Tokens are 16 bytes on the wire: printable ASCII without space. */
export const TOKEN_PATTERN = /^[\x21-\x7e]{16}$/;
/**
 * Admin tokens are random 16-character strings checked on every monitor request against every
 * admin (a request carries no admin name), so a fast salted hash is the right cost here.
 */
export const TOKEN_SCHEME = 'SSHA256';

/**
 * The monitor's admins: names with hashed tokens, in a passwd-format file (`name:{SSHA256}...`),
 * edited atomically and serialised like the users file.
 */
export class AdminStore {
  readonly #file: CredentialFile;

  constructor(path: string, options: { readonly logger?: Logger } = {}) {
    this.#file = new CredentialFile(path, {
      label: 'admins',
      ...(options.logger ? { logger: options.logger } : {}),
    });
  }

  get path(): string {
    return this.#file.path;
  }

  /** Reads the file (again). Rejects only if it cannot be read. */
  reload(): Promise<unknown> {
    return this.#file.reload();
  }

  watch(): void {
    this.#file.watch();
  }

  close(): void {
    this.#file.close();
  }

  /** The admins' names (GET 0x22); never their tokens. */
  names(): Iterable<string> {
    return this.#file.entries.keys();
  }

  get count(): number {
    return this.#file.entries.size;
  }

  /**
   * The admin whose token this is, or undefined. Every admin is tried, whatever matched, so the
   * time taken does not tell how far down the list a match was.
   */
  async verify(token: string): Promise<string | undefined> {
    let match: string | undefined;
    for (const [name, stored] of this.#file.entries) {
      if ((await stored.scheme.verify(token, stored.data)) && match === undefined) match = name;
    }
    return match;
  }

  /** Adds an admin; false if the name exists. */
  async add(name: string, token: string): Promise<boolean> {
    return (
      (await this.#file.set(name, await hashPassword(token, TOKEN_SCHEME), { onlyIfNew: true })) === 'added'
    );
  }

  /** Removes an admin, unless it is unknown or the last one. */
  remove(name: string): Promise<'removed' | 'unknown' | 'last'> {
    return this.#file.remove(name, { keepOne: true });
  }
}

/**
 * The admin a client's token opens, or undefined: a well-formed token that an admin holds, but not
 * the public default token where it is refused (`refusesDefaultToken`: outside demo mode, or when
 * listening beyond loopback). What the monitor and the dashboard both ask.
 */
export async function tokenHolder(
  admins: Pick<AdminStore, 'verify'>,
  token: string,
  refusesDefaultToken: boolean,
): Promise<string | undefined> {
  if (!TOKEN_PATTERN.test(token) || (refusesDefaultToken && token === DEFAULT_ADMIN_TOKEN)) return undefined;
  return admins.verify(token);
}
