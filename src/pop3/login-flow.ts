import { setTimeout as delay } from 'node:timers/promises';
import { hasUserCheck, type AuthResult, type Authenticator } from '../auth/types.js';
import { Pop3Error, RespCode, type ReplyText } from '../errors.js';
import { english, textError, textOf } from './text/index.js';
import type { Session } from './session.js';
import { admitUser, beginUsage, endUsage, openMaildrop } from './user-policy.js';

/**
 * The end of every login method: on success open the maildrop and enter TRANSACTION; on failure
 * wait, count it, and close the connection after `maxAuthFailures`. Every credential failure
 * carries `[AUTH]` (RFC 3206), whatever was wrong. Any answer to a client whose address or user
 * name has recent failures waits first (see `LoginThrottle`).
 */
export async function finishLogin(
  session: Session,
  method: string,
  username: string,
  result: AuthResult,
): Promise<void> {
  const { engine } = session;
  if (!result.ok && result.reason !== 'temporary') {
    return failLogin(session, method, username, textOf('invalidLogin'));
  }
  const version = result.ok ? credentialVersion(engine.authenticator, result.user.name) : undefined;
  await servePenalty(session, method, username);
  if (!result.ok) {
    engine.stats.recordLogin(method, false);
    session.log.warn(
      { user: username, method, result: result.reason, remote: session.remoteAddress },
      'login failed',
    );
    throw textError('authUnavailable', [], RespCode.sysTemp);
  }
  // The penalty can last many seconds: a user deleted or given a new password meanwhile (the
  // monitor finds no session to end yet) must not get one from the check made before it.
  if (credentialVersion(engine.authenticator, result.user.name) !== version) {
    return failLogin(session, method, username, textOf('invalidLogin'));
  }
  engine.loginThrottle.succeed(username);
  // The user's effective policy: LOGIN-DELAY and maxSessions refuse here, before the maildrop opens.
  const user = await admitUser(session, result.user);
  const maildrop = await openMaildrop(session, user);
  session.beginTransaction(user, maildrop);
  await beginUsage(session, method);
  session.beforeRelease = () => endUsage(session);
  engine.stats.recordLogin(method, true);
  engine.stats.sessionsAuthenticated += 1;
  const { appPassword } = result.user;
  session.log.info(
    {
      user: result.user.name,
      method,
      ...(appPassword === undefined ? {} : { appPassword }),
      result: 'ok',
      remote: session.remoteAddress,
    },
    'login',
  );
  engine.onLogin({ ...session.info, user: result.user.name });
  const { count, bytes } = session.totals();
  await session.reply.ok(session.say('loggedIn', result.user.name, count, bytes));
}

/**
 * A failed login (wrong credentials, or a SASL exchange that went wrong): counted, logged with the
 * delay the throttle chose (never with the secret), answered `-ERR [AUTH]` after that delay, and
 * the connection closed at `maxAuthFailures`.
 */
export async function failLogin(
  session: Session,
  method: string,
  username: string | undefined,
  message: ReplyText,
): Promise<never> {
  const { engine } = session;
  session.authFailures += 1;
  engine.stats.recordLogin(method, false);
  const verdict = await engine.loginThrottle.fail(session.remoteAddress, username, engine.limits);
  if (verdict.isThrottled) engine.stats.loginsThrottled += 1;
  session.log.warn(
    {
      user: username,
      method,
      result: 'invalid',
      remote: session.remoteAddress,
      failures: verdict.addressFailures,
      userFailures: verdict.userFailures,
      delayMs: verdict.delayMs,
    },
    'login failed',
  );
  // Waited even when 0: the answer then still comes on a later turn of the event loop.
  await delay(verdict.delayMs, undefined, { signal: session.signal });
  const isLast = session.authFailures >= engine.limits.maxAuthFailures;
  const text = isLast ? textOf('tooManyFailures', message) : message;
  throw new Pop3Error(english(text), RespCode.auth, { close: isLast, text });
}

const credentialVersion = (authenticator: Authenticator, name: string): string | undefined =>
  hasUserCheck(authenticator) ? authenticator.credentialVersion(name) : undefined;

/** Holds back the answer to an attempt from an address, or for a user name, with recent failures. */
async function servePenalty(session: Session, method: string, username: string): Promise<void> {
  const { engine } = session;
  const verdict = engine.loginThrottle.check(session.remoteAddress, username, engine.limits);
  if (!verdict.isThrottled) return;
  engine.stats.loginsThrottled += 1;
  session.log.info(
    {
      user: username,
      method,
      remote: session.remoteAddress,
      failures: verdict.addressFailures,
      userFailures: verdict.userFailures,
      delayMs: verdict.delayMs,
    },
    'throttled login attempt',
  );
  await delay(verdict.delayMs, undefined, { signal: session.signal });
}
