import { saslprep } from '@mongodb-js/saslprep';
import type { UserPolicy, UserPolicyOverrides } from './policy.js';
import { hasOneScript } from './user-name-scripts.js';

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
 * Letters and digits of any script (Unicode classes L and N) and `. _ - + @`; the first character is
 * a letter, a digit or `_ - + @` (not a dot). Combining marks (Mn, Mc) only after a letter or
 * another mark, and never an overlay mark (U+0338 COMBINING LONG SOLIDUS OVERLAY draws a slash
 * through the letter before it) nor an enclosing one (Me).
 */
const USER_NAME = /^[\p{L}\p{N}_+@-](?:[\p{L}\p{N}._+@-]|(?<=[\p{L}\p{M}])[\p{Mn}\p{Mc}])*$/u;
const OVERLAY_MARK =
  /[\u0334-\u0338\u1cd4\u1ce2-\u1ce8\u20d2\u20d3\u20d8-\u20da\u20e5\u20e6\u20ea\u20eb\u{10a39}\u{16ff0}\u{16ff1}\u{1bc9e}\u{1d167}-\u{1d169}]/u;
const ASCII_NAME = /^[A-Za-z0-9_+@-][A-Za-z0-9._+@-]*$/;

/**
 * The rule for user names, shared by logins, the users file, the monitor and the Maildir store: 1
 * to 64 UTF-8 bytes of letters, marks and digits and `. _ - + @`, not starting with a dot, the
 * letters of one script (or Latin with Chinese, Japanese or Korean: see `hasOneScript`), and in its
 * prepared form (see {@link prepareUserName}): SASLprep (RFC 4013) leaves it unchanged and finds no
 * prohibited character, no unassigned code point and no mix of right-to-left and left-to-right
 * letters. Such a name is a single path segment that is neither `.` nor `..` and holds no
 * separator, control, space or invisible character, so a mailbox path built from it cannot leave
 * the mail root, and a name has one spelling: typed composed or decomposed, one user, one folder.
 */
export function isValidUserName(name: string): boolean {
  if (ASCII_NAME.test(name)) return name.length <= MAX_USER_NAME_BYTES;
  if (!USER_NAME.test(name) || Buffer.byteLength(name, 'utf8') > MAX_USER_NAME_BYTES) return false;
  if (OVERLAY_MARK.test(name) || !hasOneScript(name)) return false;
  try {
    return saslprep(name) === name;
  } catch {
    return false;
  }
}

/**
 * A user name as a client or an operator typed it, in its one spelling: Unicode NFKC, SASLprep's
 * normalisation (RFC 4013 section 2.2), so a composed and a decomposed `ë` are one letter and a
 * fullwidth `ｊ` is `j`. SASLprep's mappings (other spaces to a space, invisible characters to
 * nothing) are not applied: a name holding such a character is refused by
 * {@link isValidUserName} rather than taken for another user's (`alice` + U+FEFF is not `alice`).
 * ASCII names come back as they are.
 */
export function prepareUserName(name: string): string {
  return ASCII_NAME.test(name) ? name : name.normalize('NFKC');
}

/** The prepared form of `name` when it is a valid user name, else undefined. */
export function canonicalUserName(name: string): string | undefined {
  const prepared = prepareUserName(name);
  return isValidUserName(prepared) ? prepared : undefined;
}
