import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { pino } from 'pino';
import { isErrno } from '../errors.js';
import { parsePasswdFile } from '../auth/passwd-file-format.js';
import { hashPassword } from '../auth/passwords/registry.js';
import { deliverToMaildir } from '../mailstore/maildir/deliver.js';

/** The C project's demo credentials: served only on loopback. */
export const DEMO_USER = 'foo';
export const DEMO_PASSWORD = 'bar';

export function welcomeMessage(now = new Date()): string {
  return [
    'From: Poplar <postmaster@localhost>',
    `To: ${DEMO_USER}@localhost`,
    'Subject: Welcome to Poplar',
    `Date: ${now.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <welcome.${now.getTime()}@poplar.localhost>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Hello,',
    '',
    'This is the demo mailbox of Poplar, a POP3 server for Node.js.',
    'You are reading it over POP3 as the demo user "foo".',
    '',
    'Put messages in directories/foo/new/ and fetch them with any POP3 client;',
    'see the README for a real users file.',
    '',
  ].join('\n');
}

/** Creates `<root>/foo/{cur,new,tmp}` with one welcome message, unless the maildir already exists. */
export async function ensureDemoMailbox(root: string): Promise<boolean> {
  const maildir = join(root, DEMO_USER);
  try {
    await readdir(join(maildir, 'cur'));
    return false;
  } catch {
    await mkdir(root, { recursive: true, mode: 0o700 });
    await deliverToMaildir(maildir, welcomeMessage());
    return true;
  }
}

/** Without --users, the users live here (demo mode); without --admins, the admins. */
export const DEMO_USERS_FILE = '.poplar-users';
export const DEFAULT_ADMINS_FILE = '.poplar-admins';

/**
 * Whether a passwd-format file still accepts `secret`, for `name` or (without a name) for any
 * entry. A missing file counts as accepting it: it would be created with the default entry.
 */
export async function isCredentialValid(
  path: string,
  name: string | undefined,
  secret: string,
): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return true;
    throw error;
  }
  const users = parsePasswdFile(text).users;
  const candidates = name === undefined ? [...users.values()] : [users.get(name)];
  for (const stored of candidates) {
    if (stored !== undefined && (await stored.scheme.verify(secret, stored.data))) return true;
  }
  return false;
}

/** Whether any entry accepts `secret`: the default admin token opens the monitor whichever admin holds it. */
export const isSecretAccepted = (path: string, secret: string): Promise<boolean> =>
  isCredentialValid(path, undefined, secret);

/** Creates a passwd-format file holding one entry, unless the file exists. Resolves to true if created. */
export async function ensureCredentialFile(path: string, name: string, field: string): Promise<boolean> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    await writeFile(path, `${name}:${field}\n`, { mode: 0o600, flag: 'wx' });
    return true;
  } catch (error) {
    if (isErrno(error, 'EEXIST')) return false;
    throw error;
  }
}

/**
 * Demo mode (no users file given): creates the users file with the demo user and the demo mailbox
 * unless they exist, and warns that the demo credentials are in use.
 */
export async function createDemoFiles(
  usersPath: string,
  maildir: string,
  passwordScheme: string,
  logger: pino.Logger,
): Promise<void> {
  if (await ensureCredentialFile(usersPath, DEMO_USER, await hashPassword(DEMO_PASSWORD, passwordScheme))) {
    logger.info({ file: usersPath }, 'demo users file created');
  }
  logger.warn(
    { user: DEMO_USER, file: usersPath },
    `demo mode: no users file given; users are kept in ${usersPath}, with the demo user ${DEMO_USER} ` +
      `(password ${DEMO_PASSWORD}), served on loopback only`,
  );
  if (await ensureDemoMailbox(maildir)) logger.info({ maildir }, 'demo mailbox created');
}
