// Fixture for the monitor and metrics end-to-end tests: a real POP3 server on a temporary Maildir
// with a passwd-file of users, an admins file, the monitor listener and (optionally) the metrics
// endpoint, all on 127.0.0.1 port 0 and all closed after the test.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { PasswdFileAuthenticator } from '../../src/auth/passwd-file.js';
import { hashPassword } from '../../src/auth/passwords/registry.js';
import type { Logger } from '../../src/log.js';
import { MaildirStore } from '../../src/mailstore/maildir/store.js';
import { serveMetrics } from '../../src/metrics/http.js';
import { createMetricsRegistry } from '../../src/metrics/registry.js';
import { AdminStore } from '../../src/monitor/admins.js';
import { sendMonitorRequest, tokenBytes } from '../../src/monitor/client.js';
import type {
  ConfigTarget,
  GetTarget,
  MonitorResponse,
  Status,
} from '../../src/monitor/protocol/messages.js';
import { MonitorServer, type MonitorLimits } from '../../src/monitor/server.js';
import type { Pop3Limits } from '../../src/pop3/limits.js';
import { createServer, type Pop3Server } from '../../src/pop3/server.js';
import { buildMaildir } from '../helpers/maildir-builder.js';
import { Pop3TestClient } from '../helpers/pop3-client.js';

/** The C project's default admin token; `root` holds it in every fixture. */
export const ROOT_TOKEN = '123456789abcdef1';
export const PASSWORDS = { alice: 'alice pw 1', bob: 'bob-pw-2' } as const;

/** alice's mail: 23 and 24 octets (every line already ends in CRLF, so sizes are the file sizes). */
export const ALICE_MESSAGES = ['Subject: one\r\n\r\nfirst\r\n', 'Subject: two\r\n\r\nsecond\r\n'] as const;
/** bob's mail: 25 octets. */
export const BOB_MESSAGES = ['Subject: three\r\n\r\nthird\r\n'] as const;

/** One line the fixture's logger received. */
export interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly msg: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** A Logger that keeps every entry, so tests can wait for a log line instead of sleeping. */
export class CapturingLogger implements Logger {
  readonly entries: LogEntry[];
  readonly #bindings: Record<string, unknown>;
  readonly #waiters: Set<() => void>;

  constructor(
    entries: LogEntry[] = [],
    bindings: Record<string, unknown> = {},
    waiters = new Set<() => void>(),
  ) {
    this.entries = entries;
    this.#bindings = bindings;
    this.#waiters = waiters;
  }

  #add(level: LogEntry['level'], fields: object, msg = ''): void {
    this.entries.push({ level, msg, fields: { ...this.#bindings, ...fields } });
    for (const wake of [...this.#waiters]) wake();
  }

  debug(fields: object, msg?: string): void {
    this.#add('debug', fields, msg);
  }
  info(fields: object, msg?: string): void {
    this.#add('info', fields, msg);
  }
  warn(fields: object, msg?: string): void {
    this.#add('warn', fields, msg);
  }
  error(fields: object, msg?: string): void {
    this.#add('error', fields, msg);
  }
  child(bindings: Record<string, unknown>): Logger {
    return new CapturingLogger(this.entries, { ...this.#bindings, ...bindings }, this.#waiters);
  }

  /** The entries with this message. */
  find(msg: string): LogEntry[] {
    return this.entries.filter((e) => e.msg === msg);
  }

  /** Resolves with the `count`-th entry with this message (the first by default), once it is logged. */
  async waitFor(msg: string, count = 1): Promise<LogEntry> {
    for (;;) {
      const found = this.find(msg);
      if (found.length >= count) return found[count - 1] as LogEntry;
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.#waiters.delete(wake);
          resolve();
        };
        this.#waiters.add(wake);
      });
    }
  }
}

export interface MonitorFixtureOptions {
  readonly monitorLimits?: Partial<MonitorLimits>;
  readonly pop3Limits?: Partial<Pop3Limits>;
  /** Also serve GET /metrics (createMetricsRegistry + serveMetrics on port 0). */
  readonly metrics?: boolean;
}

export interface MonitorFixture {
  /** The temporary directory holding everything below. */
  readonly dir: string;
  /** The Maildir root the store starts with (`<dir>/mail`). */
  readonly mailRoot: string;
  /** The folder of the users and admins files (`<dir>/etc`). */
  readonly etcDir: string;
  readonly usersFile: string;
  readonly adminsFile: string;
  /** The text the users file started with. */
  readonly usersText: string;
  readonly store: MaildirStore;
  readonly users: PasswdFileAuthenticator;
  readonly admins: AdminStore;
  readonly pop3: Pop3Server;
  readonly pop3Port: number;
  readonly monitor: MonitorServer;
  readonly monitorPort: number;
  /** Set with `metrics: true`. */
  readonly metricsPort: number | undefined;
  readonly log: CapturingLogger;
  /** One request through the project's client (`sendMonitorRequest`). */
  request(
    type: 'get' | 'config',
    target: GetTarget | ConfigTarget,
    data?: Buffer | string,
    token?: string,
  ): Promise<MonitorResponse>;
  /** GET of a counter, decoded from its 4 or 8 bytes; throws unless the status is ok. */
  get(target: GetTarget, token?: string): Promise<bigint>;
  /** A CONFIG request; resolves to the status. */
  config(target: ConfigTarget, data: Buffer | string, token?: string): Promise<Status>;
  /** A logged-in POP3 client (throws unless USER and PASS succeed). */
  login(user: string, password: string): Promise<Pop3TestClient>;
  /** USER + PASS on a new connection; resolves to the PASS reply and quits when it succeeded. */
  tryLogin(user: string, password: string): Promise<string>;
}

/** `a 0x00 b`, the DATA of the CONFIG targets that take two fields. */
export function pair(first: string, second: string): Buffer {
  return Buffer.concat([Buffer.from(first), Buffer.from([0]), Buffer.from(second)]);
}

/** Bytes from hex written by hand, spaces allowed. */
export function hex(text: string): Buffer {
  const digits = text.replace(/\s+/g, '');
  if (!/^([0-9a-f]{2})*$/i.test(digits)) throw new Error(`not hex: ${text}`);
  return Buffer.from(digits, 'hex');
}

export async function startMonitorFixture(
  t: TestContext,
  options: MonitorFixtureOptions = {},
): Promise<MonitorFixture> {
  // Closed last-opened first, the directory last: one hook, since t.after runs hooks in order.
  const cleanups: (() => unknown)[] = [];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  const dir = await mkdtemp(join(tmpdir(), 'poplar-monitor-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const mailRoot = join(dir, 'mail');
  const etcDir = join(dir, 'etc');
  await mkdir(etcDir);
  await buildMaildir(
    mailRoot,
    'alice',
    [...ALICE_MESSAGES].map((content) => ({ content })),
  );
  await buildMaildir(
    mailRoot,
    'bob',
    [...BOB_MESSAGES].map((content) => ({ content })),
  );

  const usersFile = join(etcDir, 'users');
  const usersText =
    '# Poplar users for the monitor tests\n' +
    `alice:${await hashPassword(PASSWORDS.alice, 'SSHA256')}\n` +
    '\n' +
    '# bob keeps the fields after his password\n' +
    `bob:${await hashPassword(PASSWORDS.bob, 'SSHA256')}:1000:1000::/home/bob\n`;
  await writeFile(usersFile, usersText, { mode: 0o600 });
  const adminsFile = join(etcDir, 'admins');
  await writeFile(adminsFile, `root:${await hashPassword(ROOT_TOKEN, 'SSHA256')}\n`, { mode: 0o600 });

  const log = new CapturingLogger();
  const users = new PasswdFileAuthenticator(usersFile, { logger: log });
  await users.reload();
  const admins = new AdminStore(adminsFile, { logger: log });
  await admins.reload();
  cleanups.push(() => {
    users.close();
    admins.close();
  });

  const store = new MaildirStore({ root: mailRoot, logger: log });
  const pop3 = createServer({
    authenticator: users,
    store,
    logger: log,
    hostname: 'poplar.test',
    limits: { authFailureDelayMs: 0, ...options.pop3Limits },
  });
  const { port: pop3Port } = await pop3.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => pop3.close({ graceMs: 0 }));

  const monitor = new MonitorServer(
    {
      pop3,
      admins,
      users,
      mailRoot: store,
      logger: log.child({ component: 'monitor' }),
      refusesDefaultToken: false,
    },
    { requestDeadlineMs: 2000, ...options.monitorLimits },
  );
  const { port: monitorPort } = await monitor.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => monitor.close());

  let metricsPort: number | undefined;
  if (options.metrics === true) {
    const registry = createMetricsRegistry(pop3, monitor);
    // No reuse of a rendering: these tests read counters right after changing them.
    const { server, address } = await serveMetrics(registry, { host: '127.0.0.1', port: 0, cacheMs: 0 });
    metricsPort = address.port;
    cleanups.push(() => closeHttp(server));
  }

  const clients = new Set<Pop3TestClient>();
  cleanups.push(() => {
    for (const c of clients) c.close();
  });
  const track = async (client: Promise<Pop3TestClient>): Promise<Pop3TestClient> => {
    const c = await client;
    clients.add(c);
    return c;
  };

  const request = (
    type: 'get' | 'config',
    target: GetTarget | ConfigTarget,
    data: Buffer | string = Buffer.alloc(0),
    token = ROOT_TOKEN,
  ): Promise<MonitorResponse> =>
    sendMonitorRequest(
      { host: '127.0.0.1', port: monitorPort, timeoutMs: 30_000 },
      type === 'get'
        ? { type, target: target as GetTarget, token: tokenBytes(token), data: Buffer.from(data) }
        : { type, target: target as ConfigTarget, token: tokenBytes(token), data: Buffer.from(data) },
    );

  return {
    dir,
    mailRoot,
    etcDir,
    usersFile,
    adminsFile,
    usersText,
    store,
    users,
    admins,
    pop3,
    pop3Port,
    monitor,
    monitorPort,
    metricsPort,
    log,
    request,
    async get(target, token) {
      const response = await request('get', target, Buffer.alloc(0), token);
      if (response.status !== 'ok') throw new Error(`GET ${target}: status ${response.status}`);
      if (response.data.length === 4) return BigInt(response.data.readUInt32BE(0));
      if (response.data.length === 8) return response.data.readBigUInt64BE(0);
      throw new Error(`GET ${target}: ${response.data.length} data bytes`);
    },
    async config(target, data, token) {
      return (await request('config', target, data, token)).status;
    },
    async login(user, password) {
      const client = await track(Pop3TestClient.connect(pop3Port));
      await client.login(user, password);
      return client;
    },
    async tryLogin(user, password) {
      const client = await track(Pop3TestClient.connect(pop3Port));
      try {
        return await client.tryLogin(user, password);
      } finally {
        client.close();
      }
    },
  };
}

function closeHttp(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
    server.closeAllConnections();
  });
}

/** What a raw monitor connection saw: every 'data' chunk, and the order of the socket's events. */
export interface RawExchange {
  readonly chunks: Buffer[];
  /** 'data', 'end', 'close' in the order they happened. */
  readonly events: string[];
  /** Everything received. */
  readonly received: Buffer;
}

/**
 * Connects to the monitor, writes `bytes` (in one write, or one write per element) and resolves
 * once the server has closed the connection.
 */
export async function rawExchange(port: number, bytes: Buffer | readonly Buffer[]): Promise<RawExchange> {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  const events: string[] = [];
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    events.push('data');
  });
  socket.on('end', () => events.push('end'));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      events.push('close');
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  for (const b of Buffer.isBuffer(bytes) ? [bytes] : bytes) socket.write(b);
  await closed;
  return { chunks, events, received: Buffer.concat(chunks) };
}
