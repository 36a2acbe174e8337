import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { hasControlCharacter } from '../text.js';
import { canonicalUserName } from '../user.js';
import { en } from '../pop3/text/en.js';
import { preparePassword } from '../auth/passwords/prepare.js';
import type { Logger } from '../log.js';
import type { Pop3Limits } from '../pop3/limits.js';
import type { SessionSnapshot } from '../pop3/server.js';
import { countersOf, type CounterName, type Counters, type ServerStats } from '../pop3/stats.js';
import { TOP_USERS_REPORTED, type UserBytes } from '../pop3/user-traffic.js';
import { DEFAULT_ADMIN_TOKEN, TOKEN_PATTERN, tokenHolder, type AdminStore } from './admins.js';
import { nameList } from './name-list.js';
import { uint32, uint64 } from './protocol/encode.js';
import {
  MAX_DLEN,
  type ConfigTarget,
  type GetTarget,
  type MonitorRequest,
  type MonitorResponse,
} from './protocol/messages.js';
import { asError } from '../errors.js';
import {
  MonitorRefusal,
  monitorField,
  type MonitorExtensions,
  type MonitorTargetHandler,
} from './extensions.js';

/** Where POP3 users are kept; PasswdFileAuthenticator is one. */
export interface UserDirectory {
  /** Absent: adding users and changing passwords are refused (a read-only directory). */
  setPassword?(name: string, password: string): Promise<void>;
  /** Absent: deleting users is refused. */
  deleteUser?(name: string): Promise<boolean>;
  /** The names of the users (GET 0x21); never their secrets. */
  userNames?(): Iterable<string> | Promise<Iterable<string>>;
}

/**
 * A session as the monitor lists it; `node`: the node that serves it, with `--cluster`; `worker`:
 * the pid of the worker process that serves it, with `--workers`.
 */
export type MonitoredSession = SessionSnapshot & {
  readonly node?: string;
  readonly worker?: number | undefined;
};

/** The POP3 side the monitor reads and steers: a `Pop3Server`, or the primary's pool of workers. */
export interface MonitoredPop3 {
  readonly stats: ServerStats;
  readonly limits: Pop3Limits;
  sessions(): readonly MonitoredSession[];
  /** With `--cluster`: the nodes that did not answer the last request in time (left out of it). */
  readonly nodesMissing?: readonly string[];
  /** With `--cluster`: the nodes alive as of the last request, this one included. */
  readonly nodes?: readonly string[];
  setLimits(changes: Partial<Pop3Limits>): unknown;
  endSessionsOf(user: string, message?: string): number | Promise<number>;
  /** Brings `stats` and `sessions()` up to date before they are read (the pool asks its workers). */
  refresh?(): Promise<void>;
  /**
   * With `--cluster`: the counters summed over every node (a node that did not answer counts with
   * its last answer), as of the last `refresh`. Absent: `stats`.
   */
  readonly totals?: Counters;
  /**
   * Bytes sent to users' finished sessions over the last 24 hours, most first, as of the last
   * `refresh`. Absent: `stats.userTraffic`.
   */
  topUsers?(): readonly UserBytes[];
}

/** A copy of the counters of `pop3`: summed over every node with `--cluster`, else its `stats`. */
export const totalsOf = (pop3: MonitoredPop3): Record<CounterName, number> =>
  countersOf(pop3.totals ?? pop3.stats);

/** The users with the most bytes over the last 24 hours (finished sessions) that `pop3` knows. */
export const topUsersOf = (pop3: MonitoredPop3): readonly UserBytes[] =>
  pop3.topUsers?.() ?? pop3.stats.userTraffic.top(TOP_USERS_REPORTED);

/** What the monitor reads and steers. */
export interface MonitorBackends {
  readonly pop3: MonitoredPop3;
  readonly admins: AdminStore;
  /** Absent: user changes are refused (status 0x04). */
  readonly users?: UserDirectory;
  /** The store whose mail root CONFIG 0x00 changes; absent: refused. */
  readonly mailRoot?: { root: string };
  readonly logger: Logger;
  /**
   * True outside demo mode, or when the monitor listens beyond loopback: the default (public) token
   * then opens nothing, whichever admin holds it, and may not be added back.
   */
  readonly refusesDefaultToken: boolean;
  /**
   * CONFIG 0x07, what SIGHUP does: resolves to what changed, or rejects when the configuration
   * was refused (the old one stays). Absent: refused (status 0x04).
   */
  readonly reload?: () => Promise<ReloadReport>;
  /** Targets served elsewhere (user info, UIDLs, app passwords); absent ones answer 0x03. */
  readonly extensions?: MonitorExtensions;
}

/** What a reload changed: settings taken now, and changed ones that need a restart. */
export interface ReloadReport {
  readonly applied: readonly string[];
  readonly needsRestart: readonly string[];
}

/** An expected refusal (status 0x04) with a reason for the log. */
const BadData = MonitorRefusal;

/** Targets served by {@link MonitorBackends.extensions}, not by this file. */
type ExtensionGetTarget = 'userInfo' | 'uidl' | 'appPasswords';
type ExtensionConfigTarget = 'importUidl' | 'addAppPassword' | 'revokeAppPassword';
const EXTENSION_GET = new Set<GetTarget>(['userInfo', 'uidl', 'appPasswords'] satisfies ExtensionGetTarget[]);
const EXTENSION_CONFIG = new Set<ConfigTarget>([
  'importUidl',
  'addAppPassword',
  'revokeAppPassword',
] satisfies ExtensionConfigTarget[]);
const isExtensionGet = (target: GetTarget): target is ExtensionGetTarget => EXTENSION_GET.has(target);
const isExtensionConfig = (target: ConfigTarget): target is ExtensionConfigTarget =>
  EXTENSION_CONFIG.has(target);

const OK: MonitorResponse = { status: 'ok', data: Buffer.alloc(0) };

/** An extension target: its handler's answer, or 0x03 when this server does not serve it. */
async function extension(
  handler: MonitorTargetHandler | undefined,
  data: Buffer,
  admin: string,
): Promise<MonitorResponse> {
  if (handler === undefined) return { status: 'badTarget', data: Buffer.alloc(0) };
  return { status: 'ok', data: await handler(data, { admin }) };
}

/**
 * Acts on one request whose framing is valid: checks the token first (a wrong one changes nothing
 * and reveals nothing), then the data, then acts. Every outcome is a response; nothing throws.
 */
export async function handleRequest(
  backends: MonitorBackends,
  request: MonitorRequest,
): Promise<MonitorResponse> {
  const { logger } = backends;
  const token = request.token.toString('latin1');
  const admin = await tokenHolder(backends.admins, token, backends.refusesDefaultToken);
  if (admin === undefined) {
    // Logged by the server, which throttles wrong tokens per address and aggregates their lines.
    return { status: 'authFailed', data: Buffer.alloc(0) };
  }
  try {
    if (request.type === 'get') {
      if (isExtensionGet(request.target)) {
        return await extension(backends.extensions?.get?.[request.target], request.data, admin);
      }
      await backends.pop3.refresh?.();
      // A database's list is a query: read before the synchronous encoding.
      const names = request.target === 'users' ? await backends.users?.userNames?.() : undefined;
      return { status: 'ok', data: readTarget(backends, request.target, request.data, names) };
    }
    if (isExtensionConfig(request.target)) {
      return await extension(backends.extensions?.config?.[request.target], request.data, admin);
    }
    const answer = await configure(backends, request.target, request.data, admin);
    return answer === undefined ? OK : { status: 'ok', data: answer };
  } catch (error) {
    if (error instanceof BadData) {
      logger.info({ admin, target: request.target, reason: error.message }, 'monitor change refused');
      return { status: 'badData', data: Buffer.alloc(0) };
    }
    logger.error({ admin, target: request.target, err: asError(error) }, 'monitor change failed');
    return { status: 'serverError', data: Buffer.alloc(0) };
  }
}

function readTarget(
  backends: MonitorBackends,
  target: Exclude<GetTarget, ExtensionGetTarget>,
  data: Buffer,
  names: Iterable<string> | undefined,
): Buffer {
  const stats = backends.pop3.stats;
  const uptime = Math.floor((Date.now() - stats.startedAt) / 1000);
  switch (target) {
    case 'historicConnections':
      return uint32(stats.connectionsTotal);
    case 'concurrentConnections':
      return uint32(stats.connectionsOpen);
    case 'transferredBytes':
      return uint32(stats.bytesOut);
    case 'transferredBytes64':
      return uint64(stats.bytesOut);
    case 'receivedBytes':
      return uint64(stats.bytesIn);
    case 'authenticatedSessions':
      return uint64(stats.sessionsAuthenticated);
    case 'loginsSucceeded':
      return uint64(stats.loginsSucceeded);
    case 'loginsFailed':
      return uint64(stats.loginsFailed);
    case 'messagesRetrieved':
      return uint64(stats.messagesRetrieved);
    case 'messagesDeleted':
      return uint64(stats.messagesDeleted);
    case 'uptimeSeconds':
      return uint64(uptime);
    case 'snapshot':
      return snapshot(backends, uptime);
    case 'users': {
      if (names === undefined) throw new BadData('this server cannot list its users');
      return nameList(names, data);
    }
    case 'admins':
      return nameList(backends.admins.names(), data);
  }
}

/** GET 0x20: counters and open sessions as JSON, cut to fit DLEN (and saying so). */
function snapshot(backends: MonitorBackends, uptimeSeconds: number): Buffer {
  const s = backends.pop3.stats;
  const counters = {
    historicConnections: s.connectionsTotal,
    concurrentConnections: s.connectionsOpen,
    transferredBytes: s.bytesOut,
    receivedBytes: s.bytesIn,
    authenticatedSessions: s.sessionsAuthenticated,
    loginsSucceeded: s.loginsSucceeded,
    loginsFailed: s.loginsFailed,
    loginsThrottled: s.loginsThrottled,
    authCacheHits: s.authCacheHits,
    authCacheMisses: s.authCacheMisses,
    messagesRetrieved: s.messagesRetrieved,
    messagesDeleted: s.messagesDeleted,
    uptimeSeconds,
  };
  const sessions = backends.pop3.sessions().map((x) => ({
    id: x.id,
    user: x.user ?? null,
    remoteAddress: x.remoteAddress,
    state: x.state,
    startedAt: new Date(x.startedAt).toISOString(),
    bytesIn: x.bytesIn,
    bytesOut: x.bytesOut,
    ...(x.node === undefined ? {} : { node: x.node }),
  }));
  const missing = backends.pop3.nodesMissing;
  const encode = (count: number): Buffer =>
    Buffer.from(
      JSON.stringify({
        counters,
        sessionCount: sessions.length,
        sessions: sessions.slice(0, count),
        isTruncated: count < sessions.length,
        ...(missing === undefined || missing.length === 0 ? {} : { nodesMissing: missing }),
      }),
    );
  let out = encode(sessions.length);
  if (out.length <= MAX_DLEN) return out;
  // Too long: find the most sessions that fit.
  let low = 0;
  let high = sessions.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (encode(mid).length <= MAX_DLEN) low = mid;
    else high = mid - 1;
  }
  out = encode(low);
  return out;
}

async function configure(
  backends: MonitorBackends,
  target: Exclude<ConfigTarget, ExtensionConfigTarget>,
  data: Buffer,
  admin: string,
): Promise<Buffer | undefined> {
  const { logger } = backends;
  switch (target) {
    case 'maildir': {
      if (backends.mailRoot === undefined) throw new BadData('this server has no mail root to change');
      const path = resolve(monitorField(data, 'path', 4096));
      const info = await stat(path).catch(() => undefined);
      if (info?.isDirectory() !== true) throw new BadData('not an existing directory');
      const previous = backends.mailRoot.root;
      backends.mailRoot.root = path;
      logger.info({ admin, from: previous, to: path }, 'mail root changed');
      return;
    }
    case 'chunkSize': {
      const text = monitorField(data, 'chunk size', 16);
      if (!/^[0-9]{1,8}$/.test(text)) throw new BadData('chunk size must be decimal digits');
      const bytes = Number(text);
      if (bytes < 512 || bytes > 1_048_576) throw new BadData('chunk size must be from 512 to 1048576');
      const from = backends.pop3.limits.transferChunkBytes;
      backends.pop3.setLimits({ transferChunkBytes: bytes });
      logger.info({ admin, from, to: bytes }, 'transfer chunk size changed');
      return;
    }
    case 'addAdmin': {
      const [given, token] = pair(data);
      const name = checkedName(given);
      if (!TOKEN_PATTERN.test(token)) throw new BadData('a token is 16 printable ASCII characters');
      if (backends.refusesDefaultToken && token === DEFAULT_ADMIN_TOKEN) {
        throw new BadData('the default token is for demo mode on loopback only');
      }
      if (!(await backends.admins.add(name, token))) throw new BadData('admin exists');
      logger.info({ admin, name }, 'admin added');
      return;
    }
    case 'deleteAdmin': {
      const name = nameField(data);
      const outcome = await backends.admins.remove(name);
      if (outcome !== 'removed')
        throw new BadData(outcome === 'last' ? 'the last admin cannot be deleted' : 'no such admin');
      logger.info({ admin, name }, 'admin deleted');
      return;
    }
    case 'setUser': {
      if (backends.users?.setPassword === undefined)
        throw new BadData('users cannot be changed on this server');
      const [given, password] = pair(data);
      const name = checkedName(given);
      if (password === '' || hasControlCharacter(password)) {
        throw new BadData('a password is non-empty, without control characters');
      }
      if (preparePassword(password) === undefined) {
        throw new BadData('the password holds characters SASLprep (RFC 4013) refuses');
      }
      await backends.users.setPassword(name, password);
      logger.info({ admin, user: name }, 'user set');
      return;
    }
    case 'deleteUser': {
      if (backends.users?.deleteUser === undefined)
        throw new BadData('users cannot be deleted on this server');
      const name = nameField(data);
      if (!(await backends.users.deleteUser(name))) throw new BadData('no such user');
      const ended = await backends.pop3.endSessionsOf(name, en.accountRemoved());
      logger.info({ admin, user: name, sessionsEnded: ended }, 'user deleted');
      return;
    }
    case 'endSessions': {
      const name = nameField(data);
      const ended = await backends.pop3.endSessionsOf(name);
      logger.info({ admin, user: name, sessionsEnded: ended }, 'sessions ended');
      return;
    }
    case 'reload': {
      if (data.length !== 0) throw new BadData('reload takes no data');
      if (backends.reload === undefined) throw new BadData('this server cannot reload');
      logger.info({ admin }, 'reload asked');
      const { applied, needsRestart } = await backends.reload();
      return Buffer.from(JSON.stringify({ applied, needsRestart }));
    }
  }
}

/** DATA as `first 0x00 second`. */
function pair(data: Buffer): [string, string] {
  const nul = data.indexOf(0);
  if (nul === -1) throw new BadData('expected two fields separated by NUL');
  return [monitorField(data.subarray(0, nul), 'name'), monitorField(data.subarray(nul + 1), 'secret')];
}

/** A name in its prepared form (`canonicalUserName`: typed composed or decomposed, one user). */
function checkedName(given: string): string {
  const name = canonicalUserName(given);
  if (name === undefined) throw new BadData('invalid name');
  return name;
}

/**
 * DATA as one user or admin name, valid under the user-name rule: every target that takes a name
 * applies it, so a name can never reach a file edit or a session lookup in another shape.
 */
function nameField(data: Buffer): string {
  return checkedName(monitorField(data, 'name'));
}
