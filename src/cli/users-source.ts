import cluster from 'node:cluster';
import { readFile } from 'node:fs/promises';
import type { pino } from 'pino';
import type { OAuthVerifier } from '../auth/oauth/verifier.js';
import { PasswdFileAuthenticator } from '../auth/passwd-file.js';
import type { Authenticator } from '../auth/types.js';
import { DatabaseAuthenticator, type UserdbBackend } from '../auth/userdb/authenticator.js';
import { LdapUsers } from '../auth/userdb/ldap.js';
import { PostgresUsers } from '../auth/userdb/postgres.js';
import type { DaemonConfig } from '../config/config.js';
import { isUserdbUrl } from '../config/scale-out.js';
import type { UserDirectory } from '../monitor/handlers.js';
import type { Plan } from './plan.js';
import { asFileError } from './start-errors.js';

/**
 * Where the users are, as the daemon works with them: the users file, a PostgreSQL database or an
 * LDAP directory. Each process (the single one, the primary, every worker) opens its own.
 */
export interface UsersSource {
  readonly backend: 'passwd-file' | 'postgresql' | 'ldap';
  /** The file's path, or the database URL without its password: for logs and messages. */
  readonly path: string;
  readonly authenticator: Authenticator;
  /** The monitor's user changes this source can make; undefined: none (refused). */
  readonly directory: UserDirectory | undefined;
  /** SIGHUP: the file is read again; a database has nothing to re-read. */
  reload(): Promise<unknown>;
  /** The file is re-read when it changes; nothing for a database. */
  watch(): void;
  close(): void;
  /** The scheme `name`'s password is stored with; undefined: no such user. Rejects when a database does not answer. */
  schemeOf(name: string): Promise<string | undefined>;
  /** Resolves when the users can be read now (check-config): a database answered a query. */
  check(): Promise<void>;
}

/** The users file as a source. */
export function fileUsers(users: PasswdFileAuthenticator): UsersSource {
  return {
    backend: 'passwd-file',
    path: users.path,
    authenticator: users,
    directory: users,
    reload: () => users.reload(),
    watch: () => {
      users.watch();
    },
    close: () => {
      users.close();
    },
    schemeOf: (name) => Promise.resolve(users.schemeOf(name)),
    check: () => Promise.resolve(),
  };
}

/** A database as a source: its monitor changes are the ones its backend has queries for. */
export function databaseUsers(users: DatabaseAuthenticator, logger: pino.Logger): UsersSource {
  const { backend } = users;
  const listUsers = backend.listUsers;
  return {
    backend: backend.kind,
    path: backend.location,
    authenticator: users,
    directory: {
      ...(backend.addUser === undefined ? {} : { setPassword: (n, p) => users.setPassword(n, p) }),
      ...(backend.deleteUser === undefined ? {} : { deleteUser: (n) => users.deleteUser(n) }),
      ...(listUsers === undefined ? {} : { userNames: () => listUsers() }),
    },
    reload: () => Promise.resolve(),
    watch: () => undefined,
    close: () => {
      users.close().catch((error: unknown) => {
        logger.debug({ err: (error as Error).message }, 'user database connections not closed cleanly');
      });
    },
    schemeOf: (name) => users.schemeOf(name),
    check: () => backend.ping(),
  };
}

/** A secret from a file: its first line. */
async function readSecretFile(path: string, what: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch(asFileError(what, path));
  return text.split(/\r?\n/, 1)[0] ?? '';
}

/** The database backend `config.users` names. */
async function openBackend(config: DaemonConfig, url: string, logger: pino.Logger): Promise<UserdbBackend> {
  const { userdb } = config;
  if (/^postgres(ql)?:/i.test(url)) {
    const password =
      userdb.passwordFile === undefined
        ? undefined
        : await readSecretFile(userdb.passwordFile, 'userdb password file');
    return new PostgresUsers({
      url,
      logger,
      ...(password === undefined ? {} : { password }),
      ...(userdb.passwordQuery === undefined ? {} : { passwordQuery: userdb.passwordQuery }),
      ...(userdb.addQuery === undefined ? {} : { addQuery: userdb.addQuery }),
      ...(userdb.deleteQuery === undefined ? {} : { deleteQuery: userdb.deleteQuery }),
      ...(userdb.listQuery === undefined ? {} : { listQuery: userdb.listQuery }),
    });
  }
  // ldap:// or ldaps://
  if (userdb.baseDn === undefined) throw new Error('users: an LDAP directory needs [userdb] baseDn');
  const bindPassword =
    userdb.bindPasswordFile === undefined
      ? undefined
      : await readSecretFile(userdb.bindPasswordFile, 'userdb bind password file');
  return new LdapUsers({
    url,
    baseDn: userdb.baseDn,
    logger,
    ...(userdb.filter === undefined ? {} : { filter: userdb.filter }),
    ...(userdb.bindDn === undefined ? {} : { bindDn: userdb.bindDn }),
    ...(bindPassword === undefined ? {} : { bindPassword }),
    ...(userdb.passwordAttribute === undefined ? {} : { passwordAttribute: userdb.passwordAttribute }),
  });
}

/**
 * The users, as the daemon reads them at start (`poplar check-config` and `auth-test` too); a
 * file is not watched yet. Rejects when the file cannot be read. A database is not asked yet:
 * the first login does (check() asks now).
 */
export async function openUsers(
  config: DaemonConfig,
  plan: Plan,
  oauth: OAuthVerifier | undefined,
  logger: pino.Logger,
  decoySecret?: Uint8Array,
): Promise<UsersSource> {
  const url = config.users;
  if (url !== undefined && isUserdbUrl(url)) {
    const backend = await openBackend(config, url, logger);
    const users = new DatabaseAuthenticator(backend, {
      logger,
      scheme: config.passwordScheme,
      cacheTtlMs: config.userdb.cacheTtlMs,
    });
    return databaseUsers(users, logger);
  }
  const users = new PasswdFileAuthenticator(plan.usersPath, {
    logger,
    scheme: config.passwordScheme,
    // A worker's loads are the primary's to report: one line per change, not one per process.
    isQuiet: cluster.isWorker,
    ...(decoySecret === undefined ? {} : { decoySecret }),
    ...(oauth === undefined ? {} : { oauth }),
  });
  await users.reload().catch(asFileError('users file', plan.usersPath));
  return fileUsers(users);
}
