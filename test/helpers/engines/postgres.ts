// A private PostgreSQL for tests: initdb in a temp folder, run as the `postgres` account (the
// tests run as root, which PostgreSQL refuses), on a free loopback port, its socket in the temp
// folder; stop() and start() for the outage tests. Missing binaries fail the test with the command
// that installs them.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export const POSTGRES_BIN = '/usr/lib/postgresql/15/bin';

/** A loopback port nobody listens on now (the engine may still lose it: callers retry). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Fails (never skips) when `path` is not an executable, naming the Debian package. */
export async function requireEngine(path: string, what: string, packages: string): Promise<void> {
  try {
    await access(path, constants.X_OK);
  } catch {
    throw new Error(`${what} is not installed (apt-get install ${packages})`);
  }
}

/** The account id to run an engine as when the tests run as root; undefined otherwise. */
export async function engineAccount(name: string): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const [uid, gid] = await Promise.all(
    ['-u', '-g'].map(async (flag) => Number((await run('id', [flag, name])).stdout.trim())),
  );
  return { uid: uid ?? 0, gid: gid ?? 0 };
}

/** Runs `command` as `account` (setpriv execs it: the child's pid is the engine's). */
export function asAccount(
  account: { uid: number; gid: number } | undefined,
  command: string,
  args: readonly string[],
): [string, string[]] {
  if (account === undefined) return [command, [...args]];
  return [
    'setpriv',
    [`--reuid=${account.uid}`, `--regid=${account.gid}`, '--clear-groups', '--', command, ...args],
  ];
}

/** Where an engine registers its clean-up: a test's context, or node:test's module-level `after`. */
export interface Cleanup {
  after(fn: () => Promise<void>): void;
}

/** A temporary folder, removed at clean-up (after the engine has stopped: clean-ups run last first). */
export async function engineDir(t: Cleanup, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * An engine for a whole test file (call it at the file's top level): started on first use, stopped
 * after the file's tests.
 */
export function perFile<T>(start: (cleanup: Cleanup) => Promise<T>): () => Promise<T> {
  const cleanups: (() => Promise<void>)[] = [];
  let started: Promise<T> | undefined;
  after(async () => {
    for (const fn of cleanups) await fn();
  });
  return () => (started ??= start({ after: (fn) => cleanups.unshift(fn) }));
}

/** Polls `attempt` until it resolves, at most `tries` times, `everyMs` apart; rejects with the last error. */
export async function pollUntil<T>(attempt: () => Promise<T>, tries = 400, everyMs = 25): Promise<T> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      return await attempt();
    } catch (error) {
      // The engine exited: no use waiting.
      if ((error as { isGone?: boolean }).isGone === true) throw error;
      last = error;
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  }
  throw new Error(`engine not ready: ${(last as Error).message}`, { cause: last });
}

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
  /** Adds a mailbox row with its password field as given (`{SCHEME}hash` or a bare crypt hash). */
  addMailbox(
    username: string,
    password: string,
    options?: { readonly active?: boolean; readonly table?: string },
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
  let port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const admin = (database = 'postgres') => new pg.Client({ host: dir, port, user: 'postgres', database });
  const ping = async (): Promise<void> => {
    const client = admin();
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
    } finally {
      await client.end().catch(() => undefined);
    }
  };

  const launch = async (): Promise<void> => {
    const [command, args] = asAccount(account, postgres, [
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
    ]);
    const started = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    started.stderr.on('data', (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-4000);
    });
    let isGone = false;
    exited = new Promise((resolve) =>
      started.once('exit', () => {
        resolve();
      }),
    );
    void exited.then(() => {
      isGone = true;
    });
    child = started;
    await pollUntil(async () => {
      if (isGone) throw Object.assign(new Error(`postgres exited: ${log}`), { isGone: true });
      await ping();
    }).catch((error: unknown) => {
      throw new Error(`postgres did not start: ${log}`, { cause: error });
    });
  };

  const start = async (): Promise<void> => {
    if (child !== undefined) return; // running already
    await launch().catch(async (error: unknown) => {
      await stop();
      throw error;
    });
  };
  const stop = async (): Promise<void> => {
    const running = child;
    if (running === undefined) return;
    child = undefined;
    if (running.exitCode === null && running.signalCode === null) running.kill('SIGINT');
    await exited;
  };
  t.after(stop);

  // A port taken meanwhile: another one, a few times.
  for (let attempt = 0; ; attempt++) {
    try {
      await launch();
      break;
    } catch (error) {
      await stop();
      if (attempt >= 3) throw error;
      port = await freePort();
    }
  }

  const superuser = async <T>(database: string, work: (c: pg.Client) => Promise<T>): Promise<T> => {
    const client = admin(database);
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
    get port() {
      return port;
    },
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
    async addMailbox(username, stored, options = {}) {
      const [local = '', domain = ''] = username.split('@');
      await engine.query(
        `INSERT INTO ${options.table ?? 'mailbox'} (username, password, local_part, domain, maildir, active) VALUES ($1, $2, $3, $4, $5, $6)`,
        [username, stored, local, domain, `${username}/`, options.active ?? true],
      );
    },
    stop,
    start,
  };
  return engine;
}

/** Writes the role's password to a file (mode 0600) for `[userdb] passwordFile`. */
export async function writePasswordFile(dir: string, engine: PostgresEngine): Promise<string> {
  const path = join(dir, 'db-password');
  await writeFile(path, `${engine.password}\n`, { mode: 0o600 });
  return path;
}
