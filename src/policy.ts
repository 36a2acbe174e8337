/**
 * Per-user policy (issue 15): what DELE means, RFC 2449's EXPIRE and LOGIN-DELAY, session and
 * download limits, and whether the main password may log in. A user's own values come from the
 * users backend (users-file extra fields `poplar_delete=...`, database columns, LDAP attributes)
 * as a {@link UserPolicyOverrides}; the server-wide defaults from the `[policy]` table fill in the
 * rest ({@link effectivePolicy}).
 */

/** What DELE (committed in UPDATE) does to a message. */
export type DeletePolicy =
  /** Removed for good (RFC 1939; the default). */
  | { readonly mode: 'expunge' }
  /** The file stays in the maildir; POP3 never lists it again. */
  | { readonly mode: 'hide' }
  /** Moved to the Maildir++ folder `.<folder>` (for example `.Trash`). */
  | { readonly mode: 'move'; readonly folder: string }
  /** Hidden from POP3 at once, removed by a sweep `days` days later. */
  | { readonly mode: 'keep-days'; readonly days: number };

export interface UserPolicy {
  readonly delete: DeletePolicy;
  /**
   * RFC 2449 EXPIRE: days a message is kept after its first retrieval; 0 deletes retrieved
   * messages at QUIT; `'never'`: kept until the client deletes it.
   */
  readonly expire: number | 'never';
  /** RFC 2449 LOGIN-DELAY: seconds between the starts of two sessions of the user; 0: none. */
  readonly loginDelaySeconds: number;
  /** Sessions of the user open at once, over every worker and node; undefined: no limit. */
  readonly maxSessions: number | undefined;
  /** Octets of messages (RETR, TOP) sent to the user per day (UTC); undefined: no limit. */
  readonly downloadPerDay: number | undefined;
  /** True: the main password is refused; only app passwords log the user in. */
  readonly appPasswordsOnly: boolean;
}

/** What a user's own record says; a field left out takes the server-wide default. */
export type UserPolicyOverrides = Partial<UserPolicy>;

/** The defaults of every server that is not told otherwise: RFC 1939's behaviour, no limits. */
export const DEFAULT_POLICY: UserPolicy = {
  delete: { mode: 'expunge' },
  expire: 'never',
  loginDelaySeconds: 0,
  maxSessions: undefined,
  downloadPerDay: undefined,
  appPasswordsOnly: false,
};

/** The policy that applies to a user: their own values over the server-wide ones. */
export function effectivePolicy(defaults: UserPolicy, own: UserPolicyOverrides | undefined): UserPolicy {
  if (own === undefined) return defaults;
  const merged: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(own)) if (value !== undefined) merged[key] = value;
  return merged as unknown as UserPolicy;
}
