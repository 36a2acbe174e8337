import { Pop3Error, RespCode } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { isValidUserName } from '../../user.js';
import { DEFAULT_SCHEME, hashPassword } from '../passwords/registry.js';
import type { ScramCredentials, StoredPassword } from '../passwords/types.js';
import {
  checkApop,
  checkCramMd5,
  checkPassword,
  DefaultDecoy,
  parseDatabasePassword,
  scramOf,
  type PasswordCheck,
} from '../stored-credentials.js';
import type {
  ApopAuthRequest,
  AuthenticatorWithApop,
  AuthenticatorWithCramMd5,
  AuthenticatorWithScram,
  AuthResult,
  CramMd5AuthRequest,
  PasswordAuthRequest,
  ScramCredentialsRequest,
} from '../types.js';
import { OutageCache } from './outage-cache.js';

/** Connections (PostgreSQL) or operations under way (LDAP) each process allows at most: logins past it wait. */
export const USERDB_POOL_SIZE = 10;
/** How long a login waits for a connection (a new one, or a free one of the pool). */
export const USERDB_CONNECT_TIMEOUT_MS = 5_000;
/** How long a query, search or bind may take: then no answer (PostgreSQL also cancels it: statement_timeout). */
export const USERDB_QUERY_TIMEOUT_MS = 5_000;

/**
 * A password field as a database returned it, ready to check; undefined (logged, without the
 * field) when it is not a string or not a usable `{SCHEME}hash` or bare crypt hash.
 */
export function usableStored(field: unknown, name: string, logger: Logger): StoredPassword | undefined {
  if (typeof field !== 'string') return undefined;
  const stored = parseDatabasePassword(field);
  if (typeof stored !== 'string') return stored;
  logger.warn({ user: name, problem: stored }, 'stored password not usable');
  return undefined;
}

/**
 * A user database as the authenticator sees it: PostgreSQL, or an LDAP directory. Every method
 * rejects when the database gives no answer (unreachable, timed out, shutting down, a query it
 * refuses): the authenticator then turns to its outage cache.
 */
export interface UserdbBackend {
  readonly kind: 'postgresql' | 'ldap';
  /** Where, for logs and messages: the URL without its password. */
  readonly location: string;
  /**
   * The stored `{SCHEME}` password of `name`; undefined when there is no such user, or none that
   * can log in. Absent in LDAP's bind mode, where the directory checks passwords itself.
   */
  readonly findStored?:
    ((name: string, signal: AbortSignal) => Promise<StoredPassword | undefined>) | undefined;
  /** Bind mode: whether the directory takes `password` for the entry `name` finds. */
  readonly bind?:
    | ((name: string, password: string, signal: AbortSignal) => Promise<'match' | 'mismatch' | 'unknown'>)
    | undefined;
  /** The monitor's changes (PostgreSQL with the queries set): `stored` is a `{SCHEME}hash`. */
  readonly addUser?: ((name: string, stored: string) => Promise<void>) | undefined;
  readonly deleteUser?: ((name: string) => Promise<boolean>) | undefined;
  readonly listUsers?: (() => Promise<string[]>) | undefined;
  /** Resolves when the database answers a query now (check-config). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseAuthenticatorOptions {
  readonly logger?: Logger;
  /**
   * The scheme new passwords are stored with (the monitor's add) and unknown names are checked
   * against. `PLAIN` also offers APOP and CRAM-MD5, `SCRAM-SHA-256` offers SCRAM: the operator
   * says so by choosing it, since Poplar cannot see every user's scheme in a database.
   */
  readonly scheme?: string;
  /** How long a user the database accepted keeps logging in while it is down (0: not at all). */
  readonly cacheTtlMs: number;
}

type Check = PasswordCheck | 'unknown';

/**
 * Users in a database: every login asks it (a changed password or a disabled account counts at
 * once), with the password checked by the scheme registry as for the users file. While the
 * database gives no answer, users it accepted within `cacheTtlMs` keep logging in against the
 * outage cache, a wrong password still fails, and anyone else gets `-ERR [SYS/TEMP]`, never
 * `[AUTH]`. One line is logged when the database stops answering and one when it is back.
 */
export class DatabaseAuthenticator
  implements AuthenticatorWithApop, AuthenticatorWithCramMd5, AuthenticatorWithScram
{
  readonly backend: UserdbBackend;
  readonly #logger: Logger;
  readonly #scheme: string;
  readonly #decoy: DefaultDecoy;
  readonly #cache: OutageCache;
  #isDown = false;

  constructor(backend: UserdbBackend, options: DatabaseAuthenticatorOptions) {
    this.backend = backend;
    this.#logger = options.logger ?? silentLogger;
    this.#scheme = (options.scheme ?? DEFAULT_SCHEME).toUpperCase();
    this.#decoy = new DefaultDecoy(this.#scheme);
    this.#cache = new OutageCache(options.cacheTtlMs);
  }

  /** Whether the last request reached the database. */
  get isReachable(): boolean {
    return !this.#isDown;
  }

  get cachedUsers(): number {
    return this.#cache.size;
  }

  async authenticate(request: PasswordAuthRequest): Promise<AuthResult> {
    const { username, password } = request;
    // A name that is not valid never logs in and never reaches the database: the decoy's cost.
    if (!isValidUserName(username)) {
      const check = await checkPassword(undefined, () => this.#decoy.get(), request);
      return { ok: false, reason: check === 'temporary' ? 'temporary' : 'invalid' };
    }
    let check: Check;
    try {
      check = await this.#check(request);
    } catch (error) {
      if (request.signal.aborted) return { ok: false, reason: 'temporary' };
      this.#wentDown(error);
      const cached = this.#cache.check(username, password);
      if (cached === 'match') return { ok: true, user: { name: username } };
      return { ok: false, reason: cached === 'mismatch' ? 'invalid' : 'temporary' };
    }
    this.#cameBack();
    switch (check) {
      case 'match':
        this.#cache.remember(username, password);
        return { ok: true, user: { name: username } };
      case 'temporary':
        return { ok: false, reason: 'temporary' };
      case 'unknown':
        this.#cache.forget(username);
        return { ok: false, reason: 'invalid' };
      case 'mismatch':
        this.#cache.forgetIfKept(username, password);
        return { ok: false, reason: 'invalid' };
    }
  }

  async #check(request: PasswordAuthRequest): Promise<Check> {
    const { backend } = this;
    if (backend.findStored === undefined) {
      if (backend.bind === undefined) throw new Error('a user database backend needs findStored or bind');
      return backend.bind(request.username, request.password, request.signal);
    }
    const stored = await backend.findStored(request.username, request.signal);
    const check = await checkPassword(stored, () => this.#decoy.get(), request);
    return stored === undefined && check === 'mismatch' ? 'unknown' : check;
  }

  /** The stored password of a valid name; undefined for the rest; throws Pop3Error [SYS/TEMP] when no answer. */
  async #stored(username: string, signal: AbortSignal): Promise<StoredPassword | undefined> {
    if (!isValidUserName(username) || this.backend.findStored === undefined) return undefined;
    try {
      const stored = await this.backend.findStored(username, signal);
      this.#cameBack();
      return stored;
    } catch (error) {
      this.#wentDown(error);
      throw new Pop3Error('authentication is temporarily unavailable, try again later', RespCode.sysTemp, {
        cause: error,
      });
    }
  }

  isApopOffered(): boolean {
    return this.#scheme === 'PLAIN' && this.backend.findStored !== undefined;
  }

  async authenticateApop(request: ApopAuthRequest): Promise<AuthResult> {
    return checkApop(request, await this.#stored(request.username, request.signal));
  }

  isCramMd5Offered(): boolean {
    return this.isApopOffered();
  }

  async authenticateCramMd5(request: CramMd5AuthRequest): Promise<AuthResult> {
    return checkCramMd5(request, await this.#stored(request.username, request.signal));
  }

  isScramOffered(): boolean {
    return this.#scheme === 'SCRAM-SHA-256' && this.backend.findStored !== undefined;
  }

  async scramCredentials(request: ScramCredentialsRequest): Promise<ScramCredentials | undefined> {
    return scramOf(await this.#stored(request.username, request.signal));
  }

  /** The scheme `name`'s password is stored with; undefined: no such user; `bind`: the directory checks it. */
  async schemeOf(name: string): Promise<string | undefined> {
    if (this.backend.findStored === undefined) return 'bind';
    return (await this.backend.findStored(name, AbortSignal.timeout(60_000)))?.scheme.name;
  }

  /** The monitor's add: the password hashed with the configured scheme, stored by `addQuery`. */
  async setPassword(name: string, password: string): Promise<void> {
    if (this.backend.addUser === undefined) throw new Error('this user database cannot add users');
    await this.backend.addUser(name, await hashPassword(password, this.#scheme));
    this.#cache.forget(name);
  }

  async deleteUser(name: string): Promise<boolean> {
    if (this.backend.deleteUser === undefined) throw new Error('this user database cannot delete users');
    this.#cache.forget(name);
    return this.backend.deleteUser(name);
  }

  close(): Promise<void> {
    return this.backend.close();
  }

  #wentDown(error: unknown): void {
    if (this.#isDown) return;
    this.#isDown = true;
    this.#logger.error(
      { backend: this.backend.kind, database: this.backend.location, err: describe(error) },
      `user database not answering: users verified in the last ${this.#cache.ttlMs} ms log in from the cache, others get [SYS/TEMP]`,
    );
  }

  #cameBack(): void {
    if (!this.#isDown) return;
    this.#isDown = false;
    this.#logger.info(
      { backend: this.backend.kind, database: this.backend.location },
      'user database answering again',
    );
  }
}

/** An error as a log field without its stack or properties (which may echo a connection string). */
const describe = (error: unknown): string => {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
};
