import { setTimeout as delay } from 'node:timers/promises';
import type { AuthResult } from '../../auth/types.js';
import { Pop3Error, RespCode } from '../../errors.js';
import type { Session } from '../session.js';

/**
 * The end of every login method: on success open the maildrop and enter TRANSACTION; on failure
 * wait `authFailureDelayMs`, count it, and close the connection after `maxAuthFailures`.
 * Every credential failure carries `[AUTH]` (RFC 3206), whatever was wrong.
 */
export async function finishLogin(
  session: Session,
  method: string,
  username: string,
  result: AuthResult,
): Promise<void> {
  const { engine } = session;
  if (!result.ok) {
    if (result.reason === 'temporary') {
      engine.stats.recordLogin(method, false);
      session.log.info({ user: username, method, result: result.reason }, 'login failed');
      throw new Pop3Error('authentication is temporarily unavailable, try again later', RespCode.sysTemp);
    }
    return failLogin(session, method, username, 'invalid user name or password');
  }
  const maildrop = await engine.store.open(result.user, session.signal);
  session.beginTransaction(result.user, maildrop);
  engine.stats.recordLogin(method, true);
  engine.stats.sessionsAuthenticated += 1;
  session.log.info({ user: result.user.name, method }, 'login');
  engine.onLogin({ ...session.info, user: result.user.name });
  const { count, bytes } = session.totals();
  await session.reply.ok(`${result.user.name} has ${count} messages (${bytes} octets)`);
}

/**
 * A failed login (wrong credentials, or a SASL exchange that went wrong): counted, logged, answered
 * `-ERR [AUTH]` after `authFailureDelayMs`, and the connection closed at `maxAuthFailures`.
 */
export async function failLogin(
  session: Session,
  method: string,
  username: string | undefined,
  message: string,
): Promise<never> {
  const { engine } = session;
  session.authFailures += 1;
  engine.stats.recordLogin(method, false);
  session.log.info({ user: username, method, result: 'invalid' }, 'login failed');
  await delay(engine.limits.authFailureDelayMs, undefined, { signal: session.signal });
  const isLast = session.authFailures >= engine.limits.maxAuthFailures;
  throw new Pop3Error(isLast ? `${message}, too many failures` : message, RespCode.auth, { close: isLast });
}
