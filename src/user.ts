import type { UserPolicy, UserPolicyOverrides } from './policy.js';

/** An authenticated user, as the `Authenticator` returned it. The store maps it to a mailbox. */
export interface MailUser {
  /** The user's name, valid under {@link isValidUserName}. */
  readonly name: string;
  /**
   * The user's own policy values, as the backend stores them (absent: none). The engine hands the
   * store a user whose `policy` is complete: these over the server-wide defaults.
   */
  readonly policy?: UserPolicyOverrides | UserPolicy;
  /** Set when the user logged in with an app password: its label (for logs and the access record). */
  readonly appPassword?: string;
}

/**
 * The rule for user names, shared by logins, the users file and the Maildir store: 1 to 64 bytes
 * of ASCII letters, digits and `. _ - + @`, not starting with a dot. Such a name is a single path
 * segment that is neither `.` nor `..` and contains no separator, so a mailbox path built from it
 * cannot leave the mail root.
 */
export const MAX_USER_NAME_BYTES = 64;

const USER_NAME = /^[A-Za-z0-9_+@-][A-Za-z0-9._+@-]{0,63}$/;

export function isValidUserName(name: string): boolean {
  return USER_NAME.test(name);
}
