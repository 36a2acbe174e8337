import type { pino } from 'pino';
import { withAppPasswords } from '../auth/app-passwords/authenticator.js';
import { AppPasswordStore } from '../auth/app-passwords/store.js';
import { hasLookup, type Authenticator } from '../auth/types.js';
import { appPasswordTargets } from '../monitor/app-passwords.js';
import type { MonitorExtensions } from '../monitor/extensions.js';
import type { UserDirectory } from '../monitor/handlers.js';
import { DEFAULT_POLICY, effectivePolicy, type UserPolicyOverrides } from '../policy.js';
import type { MailUser } from '../user.js';
import type { UsersSource } from './users-source.js';

/** How long the monitor waits for the users backend to say whether a user exists. */
const LOOKUP_TIMEOUT_MS = 5_000;

/** The user as the backend has them now: its own lookupUser, else the scheme of their password. */
function lookupIn(users: UsersSource): (name: string, signal: AbortSignal) => Promise<MailUser | undefined> {
  const { authenticator } = users;
  if (hasLookup(authenticator)) return (name, signal) => authenticator.lookupUser(name, signal);
  return async (name) => ((await users.schemeOf(name)) === undefined ? undefined : { name });
}

/**
 * The engine's authenticator: the users' own, with the app passwords kept in the mail root;
 * `defaults` is the `[policy]` table (its `appPasswordsOnly` under each user's own).
 */
export function withAppPasswordsOf(
  users: UsersSource,
  mailRoot: { readonly root: string },
  defaults: UserPolicyOverrides,
  logger: pino.Logger,
): Authenticator {
  const store = new AppPasswordStore({ root: () => mailRoot.root, logger });
  const policy = effectivePolicy(DEFAULT_POLICY, defaults);
  return withAppPasswords(users.authenticator, {
    store,
    logger,
    lookupUser: lookupIn(users),
    policyDefaults: () => policy,
  });
}

/**
 * The monitor's app-password targets, and its user directory made to revoke a deleted user's
 * app passwords (a user created again with the same name must not inherit them). They go even
 * when the backend no longer had the user (deleted outside Poplar, in a database).
 */
export function appPasswordsForMonitor(
  users: UsersSource,
  directory: UserDirectory | undefined,
  mailRoot: { readonly root: string },
  logger: pino.Logger,
): { readonly extensions: MonitorExtensions; readonly users: UserDirectory | undefined } {
  const store = new AppPasswordStore({ root: () => mailRoot.root, logger });
  const lookup = lookupIn(users);
  const extensions = appPasswordTargets({
    store,
    logger,
    userExists: async (name) => (await lookup(name, AbortSignal.timeout(LOOKUP_TIMEOUT_MS))) !== undefined,
  });
  const deleteUser = directory?.deleteUser?.bind(directory);
  if (directory === undefined || deleteUser === undefined) return { extensions, users: directory };
  const revoking: UserDirectory = {
    ...(directory.setPassword === undefined ? {} : { setPassword: directory.setPassword.bind(directory) }),
    ...(directory.userNames === undefined ? {} : { userNames: directory.userNames.bind(directory) }),
    async deleteUser(name) {
      const isDeleted = await deleteUser(name);
      const revoked = await store.revokeAll(name);
      if (revoked > 0)
        logger.info({ user: name, appPasswords: revoked }, 'app passwords of a deleted user revoked');
      return isDeleted;
    },
  };
  return { extensions, users: revoking };
}
