import { Client, InvalidCredentialsError, type Entry } from 'ldapts';
import { silentLogger, type Logger } from '../../log.js';
import { POLICY_FIELDS, POLICY_KEYS, type PolicyKey } from '../../policy-fields.js';
import {
  usablePolicy,
  usableStored,
  USERDB_CONNECT_TIMEOUT_MS,
  USERDB_POOL_SIZE,
  USERDB_QUERY_TIMEOUT_MS,
  type BindCheck,
  type UserdbBackend,
  type UserdbRecord,
} from './authenticator.js';
import { withoutPassword } from './postgres.js';

/** Finds a user by `uid` unless `[userdb] filter` says otherwise. */
export const DEFAULT_LDAP_FILTER = '(uid=%u)';

export interface LdapUsersOptions {
  /** `ldap://HOST:PORT` or `ldaps://HOST:PORT`. */
  readonly url: string;
  readonly baseDn: string;
  /** `%u` stands for the user name, escaped (RFC 4515). */
  readonly filter?: string;
  /** The account the search binds as, and its password; absent: an anonymous search. */
  readonly bindDn?: string;
  readonly bindPassword?: string;
  /** The attribute holding a `{SCHEME}` hash; absent: users log in by binding as themselves. */
  readonly passwordAttribute?: string;
  readonly logger?: Logger;
}

/** RFC 4515 section 3: `*`, `(`, `)`, `\` and NUL in an assertion value are written `\XX`. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The filter `template` with every `%u` replaced by the escaped user name. */
export const filterFor = (template: string, name: string): string =>
  template.replaceAll('%u', escapeFilterValue(name));

/**
 * Users in an LDAP directory: the entry `filter` finds under `baseDn` (searching as `bindDn`, or
 * anonymously), then either its `passwordAttribute` (a `{SCHEME}` hash, checked by Poplar) or a
 * bind as that entry with the user's password (checked by the directory; so only the mechanisms
 * that hand over the password, USER/PASS, PLAIN and LOGIN, can work). Each lookup opens its own
 * connection, bounded by {@link USERDB_CONNECT_TIMEOUT_MS} and {@link USERDB_QUERY_TIMEOUT_MS},
 * at most {@link USERDB_POOL_SIZE} at a time. Read-only: the monitor cannot change users.
 *
 * The entry's attributes `poplarDelete`, `poplarExpire`... (docs/policy.md, schema in
 * docs/poplar.schema) give the user's own policy, read as the users file's extra fields are; a
 * value that cannot be read, or an attribute with more than one value, refuses the user.
 */
export class LdapUsers implements UserdbBackend {
  readonly kind = 'ldap';
  readonly hasPasswords: boolean;
  readonly location: string;
  readonly #options: LdapUsersOptions;
  readonly #filter: string;
  /** The attribute the filter compares with `%u` (`uid` in `(uid=%u)`). */
  readonly #nameAttribute: string;
  readonly #logger: Logger;
  readonly #slots = new Slots(USERDB_POOL_SIZE);

  constructor(options: LdapUsersOptions) {
    this.#options = options;
    this.location = withoutPassword(options.url);
    this.#filter = options.filter ?? DEFAULT_LDAP_FILTER;
    this.#nameAttribute = /\(([A-Za-z][A-Za-z0-9-]*)=%u\)/.exec(this.#filter)?.[1] ?? 'uid';
    this.#logger = options.logger ?? silentLogger;
    this.hasPasswords = options.passwordAttribute !== undefined;
  }

  /** The entry's password (in password mode) and policy; undefined: no entry, or one that cannot log in. */
  findUser(name: string, signal: AbortSignal): Promise<UserdbRecord | undefined> {
    const attribute = this.#options.passwordAttribute;
    return this.#withClient(signal, async (client) => {
      const entry = await this.#find(client, name, [
        ...(attribute === undefined ? [] : [attribute]),
        ...POLICY_ATTRIBUTES,
      ]);
      if (entry === undefined) return undefined;
      let stored: UserdbRecord['stored'];
      if (attribute !== undefined) {
        const raw = entry[attribute];
        const value = Array.isArray(raw) ? raw[0] : raw;
        stored = usableStored(Buffer.isBuffer(value) ? value.toString('utf8') : value, name, this.#logger);
        if (stored === undefined) return undefined;
      }
      const policy = this.#policyOf(entry, name);
      return policy === undefined ? undefined : { stored, policy: policy.policy };
    });
  }

  get bind(): ((name: string, password: string, signal: AbortSignal) => Promise<BindCheck>) | undefined {
    if (this.#options.passwordAttribute !== undefined) return undefined;
    return async (name, password, signal) => {
      const found = await this.#withClient(signal, async (client) => {
        const entry = await this.#find(client, name, POLICY_ATTRIBUTES);
        const policy = entry === undefined ? undefined : this.#policyOf(entry, name);
        // An entry whose policy cannot be read is refused as if absent (after the same bind).
        return entry === undefined || policy === undefined
          ? undefined
          : { dn: entry.dn, policy: policy.policy };
      });
      const dn = found?.dn;
      // An unknown name binds too, as a DN nobody has: it costs what a user costs.
      const bound = await this.#withClient(
        signal,
        async (client) => {
          // An empty password is an unauthenticated bind (RFC 4513 5.1.2): it succeeds, as anonymous.
          if (password === '') return false;
          try {
            await client.bind(dn ?? `cn=poplar-decoy,${this.#options.baseDn}`, password);
            return true;
          } catch (error) {
            if (error instanceof InvalidCredentialsError) return false;
            throw error;
          }
        },
        { isAnonymous: true },
      );
      if (found === undefined) return { check: 'unknown' };
      return bound ? { check: 'match', policy: found.policy } : { check: 'mismatch' };
    };
  }

  #policyOf(entry: Entry, name: string): ReturnType<typeof usablePolicy> {
    // Attribute names ignore case: the server answers with the schema's spelling.
    const byLowerName = new Map(Object.entries(entry).map(([k, v]) => [k.toLowerCase(), v]));
    const valueOf = (key: PolicyKey): string | undefined => {
      const raw = byLowerName.get(POLICY_FIELDS[key].ldap.toLowerCase());
      const values = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
      if (values.length === 0) return undefined;
      // Two values are a problem the reader reports: neither is taken.
      if (values.length > 1) return '(more than one value)';
      const value = values[0];
      return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
    };
    return usablePolicy(valueOf, (key) => `attribute ${POLICY_FIELDS[key].ldap}`, name, this.#logger);
  }

  async ping(): Promise<void> {
    await this.#withClient(AbortSignal.timeout(USERDB_QUERY_TIMEOUT_MS), async (client) => {
      await client.search(this.#options.baseDn, { scope: 'base', attributes: ['1.1'] });
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * The one entry the filter finds for `name`; undefined when none, or more than one. The entry's
   * name attribute (the one the filter compares with `%u`) must hold `name` exactly: LDAP's
   * matching rules ignore case and extra spaces, and `Alice` must not log in as `alice`.
   */
  async #find(client: Client, name: string, attributes: string[]) {
    const { searchEntries: found } = await client.search(this.#options.baseDn, {
      scope: 'sub',
      filter: filterFor(this.#filter, name),
      attributes: [...attributes.filter((a) => a !== '1.1'), this.#nameAttribute],
    });
    const searchEntries = found.filter((entry) => {
      // Attribute names ignore case too: the server answers with the schema's spelling.
      const key = Object.keys(entry).find((k) => k.toLowerCase() === this.#nameAttribute.toLowerCase());
      const value = key === undefined ? undefined : entry[key];
      return (Array.isArray(value) ? value : [value]).some((v) => v === name);
    });
    if (searchEntries.length > 1) {
      this.#logger.warn(
        { user: name, entries: searchEntries.length },
        'the LDAP filter found more than one entry: refused',
      );
      return undefined;
    }
    return searchEntries[0];
  }

  /** A connection of its own, bound as the service account (or anonymous), for `work`; always closed. */
  async #withClient<T>(
    signal: AbortSignal,
    work: (client: Client) => Promise<T>,
    options: { readonly isAnonymous?: boolean } = {},
  ): Promise<T> {
    const release = await this.#slots.take(signal);
    const client = new Client({
      url: this.#options.url,
      connectTimeout: USERDB_CONNECT_TIMEOUT_MS,
      timeout: USERDB_QUERY_TIMEOUT_MS,
    });
    try {
      const { bindDn, bindPassword } = this.#options;
      if (options.isAnonymous !== true && bindDn !== undefined) await client.bind(bindDn, bindPassword ?? '');
      return await work(client);
    } finally {
      release();
      await client.unbind().catch(() => undefined);
    }
  }
}

const POLICY_ATTRIBUTES = POLICY_KEYS.map((key) => POLICY_FIELDS[key].ldap);

/** At most `size` at a time; a waiter gives up after the connect timeout, or when `signal` aborts. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.#free = size;
  }

  async take(signal: AbortSignal): Promise<() => void> {
    if (this.#free > 0) this.#free -= 1;
    else
      await new Promise<void>((resolve, reject) => {
        const timeout = AbortSignal.any([signal, AbortSignal.timeout(USERDB_CONNECT_TIMEOUT_MS)]);
        const waiter = (): void => {
          timeout.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
          reject(new Error('timed out waiting for an LDAP connection'));
        };
        timeout.addEventListener('abort', onAbort, { once: true });
        this.#waiting.push(waiter);
      });
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      const next = this.#waiting.shift();
      if (next === undefined) this.#free += 1;
      else next();
    };
  }
}
