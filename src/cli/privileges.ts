import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { pino } from 'pino';
import type { DaemonConfig } from '../config/config.js';
import type { Plan } from './plan.js';

/** The account every process of the daemon runs as once its ports are bound (`--user`, `--group`). */
export interface RunAs {
  readonly user: string;
  readonly group: string;
  readonly uid: number;
  readonly gid: number;
}

const isRoot = (): boolean => process.getuid?.() === 0;

interface CredentialCalls {
  setuid(id: number): void;
  setgid(id: number): void;
  seteuid(id: number): void;
  setegid(id: number): void;
  setgroups(groups: number[]): void;
  getgroups(): number[];
  initgroups(user: string, extraGroup: number): void;
}

/** The POSIX credential calls of `process` (absent on Windows, where --user cannot work). */
function calls(): CredentialCalls {
  const p = process as Partial<CredentialCalls>;
  const { setuid, setgid, seteuid, setegid, setgroups, getgroups, initgroups } = p;
  if (
    setuid === undefined ||
    setgid === undefined ||
    seteuid === undefined ||
    setegid === undefined ||
    setgroups === undefined ||
    getgroups === undefined ||
    initgroups === undefined
  )
    throw new Error('--user needs a POSIX system');
  return { setuid, setgid, seteuid, setegid, setgroups, getgroups, initgroups };
}

/**
 * The account of `--user`/`--group`, looked up, or undefined without `--user`. Throws (the daemon
 * exits 1) when the user or group does not exist, or when the process is not root and not already
 * that account: it could not switch. A process already running as the account (a worker forked
 * after the drop, or a service manager that started Poplar as that user) has nothing to do.
 */
export async function resolveRunAs(config: DaemonConfig): Promise<RunAs | undefined> {
  if (config.user === undefined) return undefined;
  const entry = await lookUp('passwd', config.user);
  if (entry === undefined) throw new Error(`user "${config.user}" (--user) does not exist`);
  let gid = Number(entry[3]);
  let group = config.group;
  if (group === undefined) {
    group = (await lookUpId('group', gid)) ?? String(gid);
  } else {
    const found = await lookUp('group', group);
    if (found === undefined) throw new Error(`group "${group}" (--group) does not exist`);
    gid = Number(found[2]);
  }
  const runAs = { user: config.user, group, uid: Number(entry[2]), gid };
  if (runAs.uid === 0) throw new Error(`user "${runAs.user}" (--user) is root: name an unprivileged user`);
  if (!isRoot() && !isRunningAs(runAs)) {
    throw new Error(
      `--user ${runAs.user} needs root: poplar runs as uid ${String(process.getuid?.())} and cannot switch; ` +
        `start it as root, or start it as ${runAs.user} without --user ` +
        '(ports below 1024 then need CAP_NET_BIND_SERVICE)',
    );
  }
  return runAs;
}

/** Whether this process already runs as the account, real and effective ids alike. */
export function isRunningAs(runAs: RunAs): boolean {
  return (
    process.getuid?.() === runAs.uid &&
    process.geteuid?.() === runAs.uid &&
    process.getgid?.() === runAs.gid &&
    process.getegid?.() === runAs.gid
  );
}

/**
 * Switches this process (every thread: glibc applies set*id to all of them) to the account for
 * good: the group, then the supplementary groups (the user's, from the group database, plus the
 * group), then the user, in that order, since only root may change groups. Then checks that root
 * cannot be regained. Does nothing when the process already runs as the account.
 */
export function dropPrivileges(runAs: RunAs, logger: pino.Logger): void {
  if (isRunningAs(runAs) && !isRoot()) return;
  const posix = calls();
  posix.setgid(runAs.gid);
  posix.initgroups(runAs.user, runAs.gid);
  posix.setuid(runAs.uid);
  if (!isRunningAs(runAs)) throw new Error(`could not switch to user ${runAs.user}`);
  let isRegained = false;
  try {
    posix.setuid(0);
    isRegained = true;
  } catch {
    // EPERM: as it must be.
  }
  if (isRegained) throw new Error(`switched to user ${runAs.user}, yet root could be regained`);
  logger.info({ user: runAs.user, group: runAs.group, uid: runAs.uid, gid: runAs.gid }, 'privileges dropped');
}

/**
 * Runs `create` with the account's effective ids (root's are restored afterwards), so that what it
 * creates belongs to the account and what it needs is checked as the account would see it. For the
 * files the primary makes before its ports are bound (demo mode's users file and mailbox).
 */
export async function asUser<T>(runAs: RunAs | undefined, create: () => Promise<T>): Promise<T> {
  if (runAs === undefined || !isRoot()) return create();
  const posix = calls();
  const groups = posix.getgroups();
  posix.setgroups([runAs.gid]);
  posix.setegid(runAs.gid);
  posix.seteuid(runAs.uid);
  try {
    return await create();
  } finally {
    posix.seteuid(0);
    posix.setegid(0);
    posix.setgroups(groups);
  }
}

/** Root without --user outside demo mode: a warning, since every session then runs as root. */
export function warnIfRoot(runAs: RunAs | undefined, plan: Plan, logger: pino.Logger): void {
  if (runAs !== undefined || plan.isDemo || !isRoot()) return;
  logger.warn(
    'running as root: give --user (and --group) to switch every process to an unprivileged account once ' +
      'the ports are bound, or start poplar as that account with CAP_NET_BIND_SERVICE',
  );
}

/**
 * After the drop: what the account must reach. An unreadable users file stops the start (a worker
 * could not load it); what only a later change needs (editing the users or admins file, reloading
 * the certificates, creating maildirs) is a warning naming the path.
 */
export async function checkAccess(
  config: DaemonConfig,
  plan: Plan,
  runAs: RunAs,
  logger: pino.Logger,
): Promise<void> {
  const can = (path: string, mode: number): Promise<boolean> =>
    access(path, mode).then(
      () => true,
      () => false,
    );
  if (!plan.isUserdb && !(await can(plan.usersPath, constants.R_OK)))
    throw new Error(`users file ${resolve(plan.usersPath)} is not readable by user ${runAs.user}`);
  const warn = (path: string, problem: string): void => {
    logger.warn({ user: runAs.user, path: resolve(path) }, `${resolve(path)} ${problem}`);
  };
  for (const file of [
    ...(plan.isUserdb ? [] : [plan.usersPath]),
    ...(plan.isMonitorOn ? [plan.adminsPath] : []),
  ]) {
    if (!(await can(dirname(file), constants.W_OK | constants.X_OK)))
      warn(dirname(file), `is not writable by user ${runAs.user}: monitor edits of ${file} will fail`);
  }
  const pems = [config.tlsCert, config.tlsKey, ...Object.values(config.sni).flatMap((p) => [p.cert, p.key])];
  for (const pem of pems) {
    if (pem !== undefined && !(await can(pem, constants.R_OK)))
      warn(pem, `is not readable by user ${runAs.user}: SIGHUP cannot reload it`);
  }
  const root = await can(config.maildir, constants.F_OK);
  if (root && !(await can(config.maildir, constants.W_OK | constants.X_OK)))
    warn(config.maildir, `is not writable by user ${runAs.user}: sessions cannot lock or create maildirs`);
}

const run = promisify(execFile);

/**
 * One entry of the passwd or group database, split at ':', through `getent` (so that NSS sources
 * such as LDAP count), or from /etc/passwd and /etc/group where getent is missing.
 */
async function lookUp(database: 'passwd' | 'group', key: string): Promise<string[] | undefined> {
  try {
    const { stdout } = await run('getent', [database, key]);
    return stdout.trim().split('\n')[0]?.split(':');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return undefined; // exit 2: no such entry
  }
  const text = await readFile(`/etc/${database}`, 'utf8').catch(() => '');
  const isId = /^[0-9]+$/.test(key);
  return text
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[0] === key || (isId && fields[2] === key));
}

async function lookUpId(database: 'group', id: number): Promise<string | undefined> {
  return (await lookUp(database, String(id)))?.[0];
}
