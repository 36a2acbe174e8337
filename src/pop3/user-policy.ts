import { Pop3Error, RespCode } from '../errors.js';
import {
  downloadedOn,
  MemoryUserLedger,
  utcDay,
  withSessionEnd,
  withSessionStart,
} from '../mailstore/ledger.js';
import type { Maildrop } from '../mailstore/types.js';
import { DEFAULT_POLICY, effectivePolicy, type UserPolicy } from '../policy.js';
import type { MailUser } from '../user.js';
import type { Session } from './session.js';
import type { EnginePolicy, Pop3PolicyOptions } from './usage.js';
import { en } from './text/en.js';
import { textError, textOf } from './text/index.js';

export type { EnginePolicy, Pop3PolicyOptions, SessionUsage } from './usage.js';

/**
 * The engine's side of the per-user policy (docs/policy.md): the effective policy handed to the
 * store, CAPA's EXPIRE and LOGIN-DELAY, the refusals before the maildrop is opened (LOGIN-DELAY,
 * `maxSessions`), the daily download limit, EXPIRE 0 at QUIT, and the ledger's session record.
 */

export const enginePolicy = (options: Pop3PolicyOptions): EnginePolicy => ({
  policy: effectivePolicy(DEFAULT_POLICY, options.policy),
  hasPolicy: options.policy !== undefined,
  ledger: options.ledger ?? new MemoryUserLedger(),
});

/** The reply texts of this file, in one place. */
export const POLICY_TEXT = {
  disabled: en.accessDisabled(),
  loginDelay: en.loginTooSoon,
  inUse: en.tooManySessions,
  downloadLimit: en.downloadLimit,
} as const;

/** RFC 2449 6.7 and 6.8: before login, the server-wide values with USER; after, the user's own. */
export function policyCapabilities(session: Session): string[] {
  const { engine } = session;
  const usage = session.usage;
  if (usage === undefined) {
    if (!engine.hasPolicy) return [];
    const { expire, loginDelaySeconds } = engine.policy;
    return [`EXPIRE ${expireText(expire)} USER`, `LOGIN-DELAY ${loginDelaySeconds} USER`];
  }
  const { expire, loginDelaySeconds } = usage.policy;
  // A user with values of their own is told them even when the server has no policy option.
  const caps: string[] = [];
  if (engine.hasPolicy || expire !== DEFAULT_POLICY.expire) caps.push(`EXPIRE ${expireText(expire)}`);
  if (engine.hasPolicy || loginDelaySeconds !== 0) caps.push(`LOGIN-DELAY ${loginDelaySeconds}`);
  return caps;
}

const expireText = (expire: UserPolicy['expire']): string => (expire === 'never' ? 'NEVER' : String(expire));

/**
 * After the credentials were accepted, before the maildrop is opened: the user with the
 * effective policy, or a refusal. `maxSessions` 0 refuses every login (`[AUTH]`: RFC 3206
 * section 5 names "an attempt to authenticate in violation of policy"; `[SYS/PERM]` is for system
 * errors); a session begun less than `loginDelaySeconds` ago refuses with `[LOGIN-DELAY]` (RFC
 * 2449 section 8.1.2), read from the ledger.
 */
export async function admitUser(session: Session, user: MailUser, now = Date.now()): Promise<MailUser> {
  const { engine } = session;
  const policy = effectivePolicy(engine.policy, user.policy);
  if (policy.maxSessions === 0) throw textError('accessDisabled', [], RespCode.auth);
  if (policy.loginDelaySeconds > 0) {
    const { lastStart } = await engine.ledger.read(user.name);
    const delayMs = policy.loginDelaySeconds * 1000;
    const elapsed = lastStart === undefined ? undefined : now - lastStart;
    // A start a little in the future (another node's clock ahead) counts too; one far ahead does not.
    if (elapsed !== undefined && elapsed < delayMs && elapsed > -delayMs) {
      const wait = Math.ceil((delayMs - Math.max(elapsed, 0)) / 1000);
      throw textError('loginTooSoon', [wait, policy.loginDelaySeconds], RespCode.loginDelay);
    }
  }
  return { ...user, policy };
}

/**
 * Opens the maildrop. A user with `maxSessions` gets the lock's refusal (one session per maildrop,
 * over every worker and node) with a text that names the limit.
 */
export async function openMaildrop(session: Session, user: MailUser): Promise<Maildrop> {
  try {
    return await session.engine.store.open(user, session.signal);
  } catch (error) {
    const max = (user.policy as UserPolicy).maxSessions;
    if (max === undefined || !(error instanceof Pop3Error) || error.code !== RespCode.inUse) throw error;
    throw new Pop3Error(en.tooManySessions(max), RespCode.inUse, {
      cause: error,
      text: textOf('tooManySessions', max),
    });
  }
}

/**
 * The session has begun (the maildrop is open, its lock held): the start goes into the ledger, and
 * the day's download count comes from it. A ledger that cannot be read or written is logged; the
 * session goes on (its start is then not recorded: the ledger protects no mail).
 */
export async function beginUsage(session: Session, method: string, now = Date.now()): Promise<void> {
  const user = session.user;
  if (user === undefined) return;
  const usage: Session['usage'] & object = {
    policy: user.policy as UserPolicy,
    start: now,
    method,
    day: utcDay(now),
    before: 0,
    own: 0,
    downloaded: 0,
  };
  session.usage = usage;
  try {
    await session.engine.ledger.update(user.name, (state) => {
      usage.before = downloadedOn(state, now);
      return withSessionStart(state, {
        start: now,
        address: session.remoteAddress,
        method,
        tls: session.isTls,
        bytesSent: 0,
        downloaded: 0,
        retrieved: 0,
        deleted: 0,
        appPassword: user.appPassword,
      });
    });
  } catch (error) {
    session.log.error({ user: user.name, err: error }, 'user ledger not updated at login');
  }
}

/** Before RETR or TOP: refused once the day's octets have reached `downloadPerDay`. */
export function checkDownload(session: Session, now = Date.now()): void {
  const usage = session.usage;
  const limit = usage?.policy.downloadPerDay;
  if (usage === undefined || limit === undefined) return;
  rollDay(usage, now);
  if (usage.before + usage.own >= limit) throw textError('downloadLimit', [limit], RespCode.sysTemp);
}

/** After RETR or TOP sent `octets` of a message (the one that crosses the limit goes whole). */
export function countDownload(session: Session, octets: number, now = Date.now()): void {
  const usage = session.usage;
  if (usage === undefined) return;
  rollDay(usage, now);
  usage.own += octets;
  usage.downloaded += octets;
}

/** A new UTC day: the count starts again (what was downloaded before counted for the day before). */
function rollDay(usage: NonNullable<Session['usage']>, now: number): void {
  const day = utcDay(now);
  if (day === usage.day) return;
  usage.day = day;
  usage.before = 0;
  usage.own = 0;
}

/** Counts `octets` of each chunk as it passes (TOP's partial message). */
export async function* counted(
  chunks: AsyncIterable<Buffer>,
  count: (octets: number) => void,
): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    count(chunk.length);
    yield chunk;
  }
}

/** EXPIRE 0: at QUIT the messages retrieved are deleted too, by the user's `delete` setting. */
export const expiresAtQuit = (session: Session): boolean => session.usage?.policy.expire === 0;

/**
 * The session ends, its maildrop lock still held: its record in the ledger is completed and the
 * day's download count is written. Failures are logged; the maildrop is released anyway.
 */
export async function endUsage(session: Session, now = Date.now()): Promise<void> {
  const { usage, user } = session;
  if (usage === undefined || user === undefined) return;
  rollDay(usage, now);
  const { summary } = session;
  try {
    await session.engine.ledger.update(user.name, (state) =>
      withSessionEnd(
        state,
        usage.start,
        {
          end: now,
          bytesSent: session.bytesOut,
          downloaded: usage.downloaded,
          retrieved: summary.retrievedMessages,
          deleted: summary.deletedMessages,
        },
        now,
        usage.own,
      ),
    );
  } catch (error) {
    session.log.error({ user: user.name, err: error }, 'user ledger not updated at logout');
  }
}
