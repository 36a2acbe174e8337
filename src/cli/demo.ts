import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
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
    await mkdir(root, { recursive: true });
    await deliverToMaildir(maildir, welcomeMessage());
    return true;
  }
}
