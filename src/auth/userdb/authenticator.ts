import { Pop3Error, RespCode } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { isValidUserName, type MailUser } from '../../user.js';
import type { UserPolicyOverrides } from '../../policy.js';
import { hasPolicy, readPolicy, type PolicyKey } from '../../policy-fields.js';
import { withUser } from '../with-user.js';
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
  AuthenticatorWithLookup,
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
 * A user's own policy from a database row or entry: `valueOf` gives each setting's raw value
 * (undefined or null: not set). Undefined, logged, when a value cannot be read: the caller then
 * treats the user as one who cannot log in (fail-closed, as the users file skips such a line).
 */
export function usablePolicy(
  valueOf: (key: PolicyKey) => string | number | bigint | boolean | null | undefined,
  nameOf: (key: PolicyKey) => string,
  name: string,
  logger: Logger,
): { readonly policy: UserPolicyOverrides | undefined } | undefined {
  const reading = readPolicy(valueOf, nameOf);
  if (reading.ok) return { policy: hasPolicy(reading.policy) ? reading.policy : undefined };
  logger.warn({ user: name, problem: reading.problems.join('; ') }, 'user policy not usable: login refused');
  return undefined;
}

/** A user as the database holds it. */
export interface UserdbRecord {
  /** The stored `{SCHEME}` password; undefined in LDAP's bind mode (the directory checks passwords). */
  readonly stored: StoredPassword | undefined;
  /** The user's own policy (`poplar_*` columns, `poplar*` attributes); undefined: none set. */
  readonly policy: UserPolicyOverrides | undefined;
}

/** What a bind-mode check found, and the user's own policy when it matched. */
export interface BindCheck {
  readonly check: 'match' | 'mismatch' | 'unknown';
  readonly policy?: UserPolicyOverrides | undefined;
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
  /** True when {@link findUser} gives stored passwords; false in LDAP's bind mode. */
  readonly hasPasswords: boolean;
  /**
   * `name`'s record; undefined when there is no such user, or none that can log in (a password
   * that cannot be used, a policy value that cannot be read).
   */
  findUser(name: string, signal: AbortSignal): Promise<UserdbRecord | undefined>;
  /** Bind mode: whether the directory takes `password` for the entry `name` finds. */
  readonly bind?: ((name: string, password: string, signal: AbortSignal) => Promise<BindCheck>) | undefined;
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

type Check = { readonly check: PasswordCheck | 'unknown'; readonly policy?: UserPolicyOverrides | undefined };

/**
 * Users in a database: every login asks it (a changed password or a disabled account counts at
 * once), with the password checked by the scheme registry as for the users file. While the
 * database gives no answer, users it accepted within `cacheTtlMs` keep logging in against the
 * outage cache, a wrong password still fails, and anyone else gets `-ERR [SYS/TEMP]`, never
 * `[AUTH]`. One line is logged when the database stops answering and one when it is back.
 */
export class DatabaseAuthenticator
  implements AuthenticatorWithApop, AuthenticatorWithCramMd5, AuthenticatorWithScram, AuthenticatorWithLookup
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
      if (cached === 'match') return { ok: true, user: userOf(username, this.#cache.policyOf(username)) };
      return { ok: false, reason: cached === 'mismatch' ? 'invalid' : 'temporary' };
    }
    this.#cameBack();
    switch (check.check) {
      case 'match':
        this.#cache.remember(username, password, check.policy);
        return { ok: true, user: userOf(username, check.policy) };
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
    if (!backend.hasPasswords) {
      if (backend.bind === undefined) throw new Error('a user database backend needs passwords or bind');
      return backend.bind(request.username, request.password, request.signal);
    }
    const record = await backend.findUser(request.username, request.signal);
    const check = await checkPassword(record?.stored, () => this.#decoy.get(), request);
    return {
      check: record === undefined && check === 'mismatch' ? 'unknown' : check,
      policy: record?.policy,
    };
  }

  /**
   * The user a login would return (with the user's own policy), without a password; undefined: no
   * such user. Rejects when the database gives no answer (the outage cache is not asked: it holds
   * passwords that logged in, not who exists).
   */
  async lookupUser(username: string, signal: AbortSignal): Promise<MailUser | undefined> {
    if (!isValidUserName(username)) return undefined;
    let record: UserdbRecord | undefined;
    try {
      record = await this.backend.findUser(username, signal);
    } catch (error) {
      this.#wentDown(error);
      throw error;
    }
    this.#cameBack();
    return record === undefined ? undefined : userOf(username, record.policy);
  }

  /** The record of a valid name; undefined for the rest; throws Pop3Error [SYS/TEMP] when no answer. */
  async #record(username: string, signal: AbortSignal): Promise<UserdbRecord | undefined> {
    if (!isValidUserName(username) || !this.backend.hasPasswords) return undefined;
    try {
      const record = await this.backend.findUser(username, signal);
      this.#cameBack();
      return record;
    } catch (error) {
      this.#wentDown(error);
      throw new Pop3Error('authentication is temporarily unavailable, try again later', RespCode.sysTemp, {
        cause: error,
        text: 'authUnavailable',
      });
    }
  }

  isApopOffered(): boolean {
    return this.#scheme === 'PLAIN' && this.backend.hasPasswords;
  }

  async authenticateApop(request: ApopAuthRequest): Promise<AuthResult> {
    const record = await this.#record(request.username, request.signal);
    return withUser(checkApop(request, record?.stored), (name) => userOf(name, record?.policy));
  }

  isCramMd5Offered(): boolean {
    return this.isApopOffered();
  }

  async authenticateCramMd5(request: CramMd5AuthRequest): Promise<AuthResult> {
    const record = await this.#record(request.username, request.signal);
    return withUser(checkCramMd5(request, record?.stored), (name) => userOf(name, record?.policy));
  }

  isScramOffered(): boolean {
    return this.#scheme === 'SCRAM-SHA-256' && this.backend.hasPasswords;
  }

  async scramCredentials(request: ScramCredentialsRequest): Promise<ScramCredentials | undefined> {
    return scramOf((await this.#record(request.username, request.signal))?.stored);
  }

  /** The scheme `name`'s password is stored with; undefined: no such user; `bind`: the directory checks it. */
  async schemeOf(name: string): Promise<string | undefined> {
    if (!this.backend.hasPasswords) return 'bind';
    return (await this.backend.findUser(name, AbortSignal.timeout(60_000)))?.stored?.scheme.name;
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

const userOf = (name: string, policy: UserPolicyOverrides | undefined): MailUser =>
  policy === undefined ? { name } : { name, policy };

/** An error as a log field without its stack or properties (which may echo a connection string). */
const describe = (error: unknown): string => {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
};
