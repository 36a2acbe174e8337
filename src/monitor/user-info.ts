import { hasLookup, type Authenticator } from '../auth/types.js';
import type { LedgerState, UserLedger } from '../mailstore/ledger.js';
import { DEFAULT_POLICY, effectivePolicy, type UserPolicy, type UserPolicyOverrides } from '../policy.js';
import { isValidUserName } from '../user.js';
import { MonitorRefusal, type MonitorTargetHandler } from './extensions.js';

/** How long GET 0x23 waits for the user backend (a database) before answering `exists: null`. */
export const USER_INFO_LOOKUP_TIMEOUT_MS = 5_000;

/** GET 0x23's JSON answer (docs/monitor-protocol.md). */
export interface UserInfo {
  readonly user: string;
  /** Whether the backend knows the user; null when it could not answer now (a database down). */
  readonly exists: boolean | null;
  /** The policy that applies: the user's own values over the server-wide `[policy]`. */
  readonly policy: UserPolicy;
  /** The user's own values as the backend holds them (empty: none). */
  readonly own: UserPolicyOverrides;
  /** The user's ledger: last session start, the UTC day's downloads, the last sessions (oldest first). */
  readonly ledger: LedgerState;
}

/**
 * GET 0x23 `userInfo`: DATA a user name, the answer {@link UserInfo} as JSON. The ledger is read
 * from where the POP3 side keeps it (the user's maildir: the primary reads the file with workers,
 * any node with `--cluster`). At most 20 sessions of bounded fields: far below DLEN's 65535.
 */
export function userInfoHandler(deps: {
  readonly authenticator: Authenticator;
  readonly ledger: UserLedger;
  readonly policy: UserPolicyOverrides;
}): MonitorTargetHandler {
  return async (data) => {
    const user = data.toString('utf8');
    if (!isValidUserName(user)) throw new MonitorRefusal('not a valid user name');
    const { authenticator } = deps;
    let exists: boolean | null = null;
    let own: UserPolicyOverrides = {};
    if (hasLookup(authenticator)) {
      try {
        const found = await authenticator.lookupUser(user, AbortSignal.timeout(USER_INFO_LOOKUP_TIMEOUT_MS));
        exists = found !== undefined;
        own = found?.policy ?? {};
      } catch {
        exists = null;
      }
    }
    const info: UserInfo = {
      user,
      exists,
      policy: effectivePolicy(effectivePolicy(DEFAULT_POLICY, deps.policy), own),
      own,
      ledger: await deps.ledger.read(user),
    };
    return Buffer.from(JSON.stringify(info), 'utf8');
  };
}
