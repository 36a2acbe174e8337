import { randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

let counter = 0;

/**
 * Delivers a message the Maildir way: written in `tmp/`, then renamed into `new/`, so a reader
 * never sees half a message. Returns the file name. For the demo mailbox, tests and tools.
 */
export async function deliverToMaildir(maildir: string, message: Uint8Array | string): Promise<string> {
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(maildir, sub), { recursive: true, mode: 0o700 });
  counter += 1;
  const now = Date.now();
  const seconds = Math.floor(now / 1000);
  const micros = (now % 1000) * 1000;
  const host = hostname().replace(/[/:]/g, '_');
  const name = `${seconds}.M${micros}P${process.pid}Q${counter}R${randomBytes(4).toString('hex')}.${host}`;
  const tmp = join(maildir, 'tmp', name);
  await writeFile(tmp, message, { mode: 0o600, flush: true });
  await rename(tmp, join(maildir, 'new', name));
  return name;
}
