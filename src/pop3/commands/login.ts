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
    session.authFailures += 1;
    engine.stats.recordLogin(method, false);
    session.log.info({ user: username, method, result: result.reason }, 'login failed');
    if (result.reason === 'temporary') {
      throw new Pop3Error('authentication is temporarily unavailable, try again later', RespCode.sysTemp);
    }
    await delay(engine.limits.authFailureDelayMs, undefined, { signal: session.signal });
    const isLast = session.authFailures >= engine.limits.maxAuthFailures;
    throw new Pop3Error(
      isLast ? 'invalid user name or password, too many failures' : 'invalid user name or password',
      RespCode.auth,
      { close: isLast },
    );
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
