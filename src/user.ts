import { saslprep } from '@mongodb-js/saslprep';
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

/** The longest user name, in UTF-8 bytes (after preparation). */
export const MAX_USER_NAME_BYTES = 64;

/**
 * Letters, marks and digits of any script (Unicode classes L, M, N) and `. _ - + @`; the first
 * character is a letter, a digit or `_ - + @` (not a dot, not a combining mark).
 */
const USER_NAME = /^[\p{L}\p{N}_+@-][\p{L}\p{M}\p{N}._+@-]*$/u;
const ASCII_NAME = /^[A-Za-z0-9_+@-][A-Za-z0-9._+@-]*$/;

/**
 * The rule for user names, shared by logins, the users file, the monitor and the Maildir store: 1
 * to 64 UTF-8 bytes of letters, marks and digits of any script and `. _ - + @`, not starting with a
 * dot, and already in its prepared form (see {@link prepareUserName}): SASLprep (RFC 4013) leaves
 * it unchanged and finds no prohibited character, no unassigned code point and no mix of
 * right-to-left and left-to-right letters. Such a name is a single path segment that is neither `.`
 * nor `..` and contains no separator, control or invisible character, so a mailbox path built from
 * it cannot leave the mail root, and one name has one spelling: typed composed or decomposed, it
 * is the same user and the same folder.
 */
export function isValidUserName(name: string): boolean {
  if (ASCII_NAME.test(name)) return name.length <= MAX_USER_NAME_BYTES;
  if (!USER_NAME.test(name) || Buffer.byteLength(name, 'utf8') > MAX_USER_NAME_BYTES) return false;
  try {
    return saslprep(name) === name;
  } catch {
    return false;
  }
}

/**
 * A user name as a client or an operator typed it, in its one spelling: SASLprep (RFC 4013: NFKC,
 * other spaces mapped to a space, invisible characters removed). A name SASLprep refuses is given
 * back unchanged, for {@link isValidUserName} to refuse (a login then fails like any unknown name).
 * ASCII names without control characters come back as they are.
 */
export function prepareUserName(name: string): string {
  if (ASCII_NAME.test(name)) return name;
  try {
    return saslprep(name, { allowUnassigned: true });
  } catch {
    return name;
  }
}

/** The prepared form of `name` when it is a valid user name, else undefined. */
export function canonicalUserName(name: string): string | undefined {
  const prepared = prepareUserName(name);
  return isValidUserName(prepared) ? prepared : undefined;
}
