import type { UserLedger } from '../mailstore/ledger.js';
import type { UserPolicy, UserPolicyOverrides } from '../policy.js';

// The types of the engine's per-user policy (user-policy.ts holds what it does), apart so that
// session.ts can name them without importing that file.

/** The policy options of `Pop3ServerOptions`. */
export interface Pop3PolicyOptions {
  /**
   * Server-wide defaults of every user's policy (the daemon's `[policy]` table); a user's own
   * values (`MailUser.policy`) win. Given (even `{}`), CAPA advertises EXPIRE and LOGIN-DELAY
   * (RFC 2449), with `USER`, since users may have their own. Default: none (RFC 1939, no limits).
   */
  readonly policy?: UserPolicyOverrides;
  /**
   * Where each user's session starts, daily download and access record are kept: LOGIN-DELAY and
   * `downloadPerDay` hold over every server that shares it. Default: this process's memory. The
   * daemon keeps it in the user's maildir (`FileUserLedger`).
   */
  readonly ledger?: UserLedger;
}

/** What the engine keeps of the policy options. */
export interface EnginePolicy {
  /** The server-wide policy: the defaults under the `policy` option. */
  readonly policy: UserPolicy;
  /** Whether the `policy` option was given (CAPA then advertises EXPIRE and LOGIN-DELAY). */
  readonly hasPolicy: boolean;
  readonly ledger: UserLedger;
}

/** One session's policy and usage, from login to the end of the session. */
export interface SessionUsage {
  readonly policy: UserPolicy;
  /** When the session began (after the maildrop was opened), and how it logged in. */
  readonly start: number;
  readonly method: string;
  /** The UTC day counted, octets downloaded that day before this session, and by this session. */
  day: string;
  before: number;
  own: number;
  /** Octets of messages this session sent (RETR, TOP), over every day. */
  downloaded: number;
}
