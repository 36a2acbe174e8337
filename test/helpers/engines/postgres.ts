// A private PostgreSQL for tests: initdb in a temp folder, run as the `postgres` account (the
// tests run as root, which PostgreSQL refuses), on a free loopback port, its socket in the temp
// folder; stop() and start() for the outage tests. Missing binaries fail the test with the command
// that installs them.
import { execFile } from 'node:child_process';
import { chown, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import {
  asAccount,
  engineAccount,
  engineDir,
  requireEngine,
  superviseEngine,
  type Cleanup,
} from './engine-process.js';

const run = promisify(execFile);

export const POSTGRES_BIN = '/usr/lib/postgresql/15/bin';

/** Postfixadmin's `mailbox` table, as its setup creates it on PostgreSQL (the columns Poplar may read). */
export const MAILBOX_TABLE = `CREATE TABLE mailbox (
  username varchar(255) PRIMARY KEY,
  password varchar(255) NOT NULL DEFAULT '',
  name varchar(255) NOT NULL DEFAULT '',
  maildir varchar(255) NOT NULL DEFAULT '',
  quota bigint NOT NULL DEFAULT 0,
  local_part varchar(255) NOT NULL DEFAULT '',
  domain varchar(255) NOT NULL DEFAULT '',
  created timestamp with time zone NOT NULL DEFAULT now(),
  modified timestamp with time zone NOT NULL DEFAULT now(),
  active boolean NOT NULL DEFAULT true
)`;

export interface PostgresEngine {
  readonly port: number;
  /** The role Poplar logs in as, its password, and its database. */
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** `postgresql://poplar[:password]@127.0.0.1:PORT/mail`. */
  url(options?: { readonly withPassword?: boolean }): string;
  /** Runs SQL as the superuser, over the socket, in the test database. */
  query(sql: string, params?: readonly unknown[]): Promise<pg.QueryResult<Record<string, unknown>>>;
  /** Creates Postfixadmin's `mailbox` table (or `table`, e.g. `s1.mailbox` in a new schema), owned by the role. */
  createMailboxTable(table?: string): Promise<void>;
  /**
   * Adds Poplar's policy columns to a mailbox table, each in a type an operator might choose:
   * text (delete, expire), integer (login delay, sessions), bigint (download), boolean.
   */
  addPolicyColumns(table?: string): Promise<void>;
  /**
   * Adds a mailbox row with its password field as given (`{SCHEME}hash` or a bare crypt hash), and
   * `policy` values by column (`{ poplar_delete: 'hide' }`; the columns added first).
   */
  addMailbox(
    username: string,
    password: string,
    options?: {
      readonly active?: boolean;
      readonly table?: string;
      readonly policy?: Readonly<Record<string, string | number | boolean>>;
    },
  ): Promise<void>;
  /** Fast shutdown: connections are cut, new ones refused, until start(). */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
}

/** Starts a private PostgreSQL, stopped and removed after `t`. */
export async function startPostgres(t: Cleanup): Promise<PostgresEngine> {
  const postgres = join(POSTGRES_BIN, 'postgres');
  await requireEngine(postgres, 'postgresql', 'postgresql');
  const dir = await engineDir(t, 'poplar-pg-');
  const account = await engineAccount('postgres');
  if (account !== undefined) await chown(dir, account.uid, account.gid);
  const data = join(dir, 'data');
  const [initdb, initArgs] = asAccount(account, join(POSTGRES_BIN, 'initdb'), [
    '-D',
    data,
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    '-U',
    'postgres',
    '--no-sync',
    '--encoding=UTF8',
    '--locale=C',
  ]);
  await run(initdb, initArgs);
  const password = 'db-secret-Zq7';
  const admin = (port: number, database = 'postgres') =>
    new pg.Client({ host: dir, port, user: 'postgres', database });
  const engineProcess = await superviseEngine(t, {
    name: 'postgres',
    stopSignal: 'SIGINT', // fast shutdown: sessions are cut
    command: (port) =>
      asAccount(account, postgres, [
        '-D',
        data,
        '-p',
        String(port),
        '-k',
        dir,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
      ]),
    ping: async (port) => {
      const client = admin(port);
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
      } finally {
        await client.end().catch(() => undefined);
      }
    },
  });
  const port = engineProcess.port;

  const superuser = async <T>(database: string, work: (c: pg.Client) => Promise<T>): Promise<T> => {
    const client = admin(port, database);
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  await superuser('postgres', async (c) => {
    await c.query(`CREATE ROLE poplar LOGIN PASSWORD '${password}'`);
    await c.query('CREATE DATABASE mail OWNER poplar');
  });

  const engine: PostgresEngine = {
    port,
    user: 'poplar',
    password,
    database: 'mail',
    url: (options) =>
      `postgresql://poplar${options?.withPassword === true ? `:${password}` : ''}@127.0.0.1:${port}/mail`,
    query: (sql, params = []) => superuser('mail', (c) => c.query(sql, [...params])),
    async createMailboxTable(table = 'mailbox') {
      const dot = table.indexOf('.');
      if (dot !== -1) await engine.query(`CREATE SCHEMA ${table.slice(0, dot)} AUTHORIZATION poplar`);
      await engine.query(MAILBOX_TABLE.replace('mailbox', table));
      await engine.query(`ALTER TABLE ${table} OWNER TO poplar`);
    },
    async addPolicyColumns(table = 'mailbox') {
      await engine.query(
        `ALTER TABLE ${table} ADD COLUMN poplar_delete text, ADD COLUMN poplar_expire text, ` +
          'ADD COLUMN poplar_login_delay integer, ADD COLUMN poplar_max_sessions integer, ' +
          'ADD COLUMN poplar_download_per_day bigint, ADD COLUMN poplar_app_passwords_only boolean',
      );
    },
    async addMailbox(username, stored, options = {}) {
      const [local = '', domain = ''] = username.split('@');
      const policy = Object.entries(options.policy ?? {});
      const columns = [
        'username',
        'password',
        'local_part',
        'domain',
        'maildir',
        'active',
        ...policy.map(([c]) => c),
      ];
      await engine.query(
        `INSERT INTO ${options.table ?? 'mailbox'} (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
        [
          username,
          stored,
          local,
          domain,
          `${username}/`,
          options.active ?? true,
          ...policy.map(([, v]) => v),
        ],
      );
    },
    stop: () => engineProcess.stop(),
    start: () => engineProcess.start(),
  };
  return engine;
}

/** Writes the role's password to a file (mode 0600) for `[userdb] passwordFile`. */
export async function writePasswordFile(dir: string, engine: PostgresEngine): Promise<string> {
  const path = join(dir, 'db-password');
  await writeFile(path, `${engine.password}\n`, { mode: 0o600 });
  return path;
}
