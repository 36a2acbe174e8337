import { labelProblem } from '../auth/app-passwords/format.js';
import { AppPasswordError, type AppPasswordStore } from '../auth/app-passwords/store.js';
import type { Logger } from '../log.js';
import { isValidUserName } from '../user.js';
import { MonitorRefusal, monitorField, type MonitorExtensions } from './extensions.js';

/**
 * The monitor's app-password targets (docs/monitor-protocol.md):
 * - GET 0x25 `appPasswords`, DATA `user`: JSON `{"user","appPasswords":[{"label","created","lastUsed"}]}`
 *   (`lastUsed`: `{"at","address"}` or null), never a secret or a hash;
 * - CONFIG 0x09 `addAppPassword`, DATA `user NUL label`: JSON `{"user","label","secret","created"}`,
 *   the only time the secret is sent;
 * - CONFIG 0x0a `revokeAppPassword`, DATA `user NUL label`: empty.
 * An unknown user, a bad or taken label, too many app passwords or no such label: status 0x04.
 */
export interface AppPasswordTargetsOptions {
  readonly store: AppPasswordStore;
  /** Whether the users backend has this user now (rejects when it cannot say). */
  readonly userExists: (name: string) => Promise<boolean>;
  readonly logger: Logger;
}

function userOf(data: Buffer): string {
  const user = monitorField(data, 'user name');
  if (!isValidUserName(user)) throw new MonitorRefusal('invalid user name');
  return user;
}

/** DATA `user NUL label`. */
function userAndLabel(data: Buffer): [string, string] {
  const nul = data.indexOf(0);
  if (nul === -1) throw new MonitorRefusal('expected a user name and a label separated by NUL');
  const label = monitorField(data.subarray(nul + 1), 'label');
  const problem = labelProblem(label);
  if (problem !== undefined) throw new MonitorRefusal(problem);
  return [userOf(data.subarray(0, nul)), label];
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), 'utf8');

export function appPasswordTargets(options: AppPasswordTargetsOptions): MonitorExtensions {
  const { store, logger } = options;
  const existing = async (user: string): Promise<string> => {
    if (!(await options.userExists(user))) throw new MonitorRefusal(`no such user: ${user}`);
    return user;
  };
  /** A refusal of the store (a label taken, too many...) answers 0x04 with its reason. */
  const refusing = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      if (error instanceof AppPasswordError) throw new MonitorRefusal(error.message);
      throw error;
    }
  };
  return {
    get: {
      appPasswords: async (data) => {
        const user = await existing(userOf(data));
        const list = await store.list(user);
        return json({
          user,
          appPasswords: list.map(({ label, created, lastUsed }) => ({
            label,
            created,
            lastUsed: lastUsed ?? null,
          })),
        });
      },
    },
    config: {
      addAppPassword: async (data, { admin }) => {
        const [name, label] = userAndLabel(data);
        const user = await existing(name);
        const made = await refusing(() => store.add(user, label));
        // The label only: the secret goes to the admin's client and nowhere else.
        logger.info({ admin, user, appPassword: label }, 'app password added');
        return json({ user, label, secret: made.secret, created: made.created });
      },
      revokeAppPassword: async (data, { admin }) => {
        const [user, label] = userAndLabel(data);
        const isRevoked = await refusing(() => store.revoke(user, label));
        if (!isRevoked) throw new MonitorRefusal(`${user} has no app password labelled ${label}`);
        logger.info({ admin, user, appPassword: label }, 'app password revoked');
        return Buffer.alloc(0);
      },
    },
  };
}
