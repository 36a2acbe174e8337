import pg from 'pg';
import { silentLogger, type Logger } from '../../log.js';
import { POLICY_FIELDS, type PolicyKey } from '../../policy-fields.js';
import {
  usablePolicy,
  usableStored,
  USERDB_CONNECT_TIMEOUT_MS,
  USERDB_POOL_SIZE,
  USERDB_QUERY_TIMEOUT_MS,
  type UserdbBackend,
  type UserdbRecord,
} from './authenticator.js';

/** Postfixadmin's `mailbox` table: the password of an active mailbox. */
export const DEFAULT_PASSWORD_QUERY = 'SELECT password FROM mailbox WHERE username = $1 AND active = true';
/** An idle connection is closed after this. */
export const USERDB_IDLE_TIMEOUT_MS = 30_000;

export interface PostgresUsersOptions {
  /** `postgresql://USER[:PASSWORD]@HOST:PORT/DB` (libpq's URL form, `?sslmode=...` included). */
  readonly url: string;
  /** The database password, from `[userdb] passwordFile`; takes the place of the URL's. */
  readonly password?: string;
  readonly passwordQuery?: string;
  readonly addQuery?: string;
  readonly deleteQuery?: string;
  readonly listQuery?: string;
  readonly logger?: Logger;
}

/**
 * Users in PostgreSQL, found with Dovecot-style queries (`$1` the user name, always a bound
 * parameter, never spliced into the SQL). The first column of the one row `passwordQuery` returns
 * is the password: `{SCHEME}hash`, or a bare crypt hash as Postfixadmin stores it. Columns named
 * `poplar_delete`, `poplar_expire`... (docs/policy.md; NULL: not set) give the user's own policy,
 * read as the users file's extra fields are; a value that cannot be read refuses the user. Each query
 * waits at most {@link USERDB_CONNECT_TIMEOUT_MS} for a connection and
 * {@link USERDB_QUERY_TIMEOUT_MS} for its answer.
 */
export class PostgresUsers implements UserdbBackend {
  readonly kind = 'postgresql';
  readonly hasPasswords = true;
  readonly location: string;
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  readonly #passwordQuery: string;
  readonly #options: PostgresUsersOptions;

  constructor(options: PostgresUsersOptions) {
    this.#options = options;
    this.location = withoutPassword(options.url);
    this.#logger = options.logger ?? silentLogger;
    this.#passwordQuery = options.passwordQuery ?? DEFAULT_PASSWORD_QUERY;
    this.#pool = new pg.Pool({
      connectionString: withPassword(options.url, options.password),
      max: USERDB_POOL_SIZE,
      connectionTimeoutMillis: USERDB_CONNECT_TIMEOUT_MS,
      query_timeout: USERDB_QUERY_TIMEOUT_MS,
      statement_timeout: USERDB_QUERY_TIMEOUT_MS,
      idleTimeoutMillis: USERDB_IDLE_TIMEOUT_MS,
      application_name: 'poplar',
    });
    // An idle connection whose server goes away (a restart, a stop) emits 'error' on the pool:
    // without a listener the process would crash. The pool drops that connection itself.
    this.#pool.on('error', (error) => {
      this.#logger.debug({ database: this.location, err: error.message }, 'idle database connection lost');
    });
  }

  async findUser(name: string): Promise<UserdbRecord | undefined> {
    const { rows, fields } = await this.#pool.query<unknown[]>({
      text: this.#passwordQuery,
      values: [name],
      rowMode: 'array',
    });
    if (rows.length === 0) return undefined;
    if (rows.length > 1) {
      this.#logger.warn(
        { user: name, rows: rows.length },
        'passwordQuery returned more than one row: refused',
      );
      return undefined;
    }
    const row = rows[0] ?? [];
    const stored = usableStored(row[0], name, this.#logger);
    if (stored === undefined) return undefined;
    const columns = new Map(fields.map((field, index) => [field.name, index]));
    const valueOf = (key: PolicyKey) => {
      const index = columns.get(POLICY_FIELDS[key].field);
      return index === undefined || index === 0 ? undefined : columnValue(row[index]);
    };
    const policy = usablePolicy(valueOf, (key) => `column ${POLICY_FIELDS[key].field}`, name, this.#logger);
    return policy === undefined ? undefined : { stored, policy: policy.policy };
  }

  get addUser(): ((name: string, stored: string) => Promise<void>) | undefined {
    const query = this.#options.addQuery;
    if (query === undefined) return undefined;
    return async (name, stored) => {
      await this.#pool.query(query, [name, stored]);
    };
  }

  get deleteUser(): ((name: string) => Promise<boolean>) | undefined {
    const query = this.#options.deleteQuery;
    if (query === undefined) return undefined;
    return async (name) => ((await this.#pool.query(query, [name])).rowCount ?? 0) > 0;
  }

  get listUsers(): (() => Promise<string[]>) | undefined {
    const query = this.#options.listQuery;
    if (query === undefined) return undefined;
    return async () => {
      const { rows } = await this.#pool.query<unknown[]>({ text: query, rowMode: 'array' });
      return rows.map((row) => row[0]).filter((name): name is string => typeof name === 'string');
    };
  }

  async ping(): Promise<void> {
    await this.#pool.query('SELECT 1');
  }

  close(): Promise<void> {
    return this.#pool.end();
  }
}

/** A column's value as the policy reader takes it: NULL is not set; a type it cannot read, text it refuses. */
const columnValue = (value: unknown): string | number | bigint | boolean | undefined =>
  value === null || value === undefined
    ? undefined
    : typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
      ? value
      : typeof value === 'bigint'
        ? value
        : Object.prototype.toString.call(value);

/**
 * The URL with `password` in it (pg reads the connection string over any separate password,
 * even an absent one); the URL as it is when there is none.
 */
function withPassword(url: string, password: string | undefined): string {
  if (password === undefined) return url;
  const parsed = new URL(url);
  parsed.password = password;
  return parsed.href;
}

/** A URL with its password, if any, replaced: what logs and messages show. */
export function withoutPassword(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:(not shown)@');
}
