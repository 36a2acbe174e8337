import type { MailUser } from '../user.js';
import type { AuthResult } from './types.js';

/**
 * A successful result with the user a backend returns for its name (the user's own policy in it):
 * the shared checks (APOP, CRAM-MD5, bearer tokens) know only the name.
 */
export const withUser = (result: AuthResult, userOf: (name: string) => MailUser): AuthResult =>
  result.ok ? { ok: true, user: userOf(result.user.name) } : result;
