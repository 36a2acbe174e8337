import { access, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { pino } from 'pino';
import type { DaemonConfig } from '../config/config.js';
import { isUserdbUrl } from '../config/scale-out.js';
import { isErrno } from '../errors.js';
import { isLoopbackAddress } from '../loopback.js';
import { DEFAULT_ADMIN_TOKEN } from '../monitor/admins.js';
import {
  DEFAULT_ADMINS_FILE,
  DEMO_PASSWORD,
  DEMO_USER,
  DEMO_USERS_FILE,
  isCredentialValid,
  isSecretAccepted,
} from './demo.js';
import { asFileError } from './start-errors.js';

/** Where the daemon keeps its files and listens, from the config. */
export interface Plan {
  readonly isDemo: boolean;
  /** The users are in a database (`--users postgresql://...`, `ldap://...`): `usersPath` is its URL. */
  readonly isUserdb: boolean;
  readonly usersPath: string;
  readonly adminsPath: string;
  readonly listen: readonly string[];
  readonly isMonitorOn: boolean;
  readonly monitorExposed: readonly string[];
  readonly isDefaultAdminFile: boolean;
}

export function planOf(config: DaemonConfig): Plan {
  const isDemo = config.users === undefined;
  const isMonitorOn = config.monitorPort !== undefined;
  return {
    isDemo,
    isUserdb: config.users !== undefined && isUserdbUrl(config.users),
    usersPath: config.users ?? join(config.maildir, DEMO_USERS_FILE),
    adminsPath: config.admins ?? join(config.maildir, DEFAULT_ADMINS_FILE),
    listen: config.listen.length > 0 ? config.listen : isDemo ? ['127.0.0.1', '::1'] : ['0.0.0.0', '::'],
    isMonitorOn,
    monitorExposed: isMonitorOn ? config.monitorListen.filter((a) => !isLoopbackAddress(a)) : [],
    isDefaultAdminFile: config.admins === undefined,
  };
}

/**
 * Throws when the plan would serve the demo credentials beyond loopback: the demo user's password,
 * and the default admin token, may not be reachable from elsewhere. Creates nothing.
 */
export async function refuseExposedDefaults(plan: Plan): Promise<void> {
  const exposed = plan.listen.filter((a) => !isLoopbackAddress(a));
  if (
    plan.isDemo &&
    exposed.length > 0 &&
    (await isCredentialValid(plan.usersPath, DEMO_USER, DEMO_PASSWORD).catch(
      asFileError('users file', plan.usersPath),
    ))
  ) {
    throw new Error(
      `refusing to listen on ${exposed.join(', ')} with the demo user ${DEMO_USER}:${DEMO_PASSWORD}; ` +
        'give a users file with --users, or listen on loopback only',
    );
  }
  // Outside demo mode a missing default admins file is created with a random token, not the default one.
  const isGenerated = !plan.isDemo && plan.isDefaultAdminFile && !(await exists(plan.adminsPath));
  if (
    plan.monitorExposed.length > 0 &&
    !isGenerated &&
    (await isSecretAccepted(plan.adminsPath, DEFAULT_ADMIN_TOKEN).catch(
      asFileError('admins file', plan.adminsPath),
    ))
  ) {
    throw new Error(
      `refusing to expose the monitor on ${plan.monitorExposed.join(', ')} while the default admin token is valid; ` +
        'give an admins file with --admins, or keep the monitor on loopback',
    );
  }
}

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/**
 * Throws when the mail root exists but is not a folder (every login would fail); warns when it does
 * not exist outside demo mode (a typo would serve empty mailboxes). Creates nothing itself: a missing
 * root is created later (for the admins file, or at the first login).
 */
export async function checkMailRoot(root: string, plan: Plan, logger: pino.Logger): Promise<void> {
  const path = resolve(root);
  const found = await stat(path).catch((error: unknown) => error as NodeJS.ErrnoException);
  if (found instanceof Error) {
    if (isErrno(found, 'ENOENT')) {
      if (!plan.isDemo) {
        logger.warn({ maildir: path }, 'mail root does not exist; it is created empty (check --maildir)');
      }
      return;
    }
    if (!isErrno(found, 'ENOTDIR'))
      throw new Error(`mail root ${path} cannot be read (${found.code ?? found.message})`, { cause: found });
  } else if (found.isDirectory()) return;
  throw new Error(`mail root ${path} is not a directory`);
}
