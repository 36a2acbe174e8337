import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { isErrno } from '../../errors.js';
import type { MaildirName } from './filename.js';
import type { MaildirFs } from './fs.js';

/** Longest folder name `move:FOLDER` accepts. */
export const MAX_FOLDER_NAME_LENGTH = 100;

/** One or more parts of letters, digits, `_` and `-`, joined by dots (Maildir++ nesting: `Archive.2026`). */
const FOLDER_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/**
 * Whether `name` may be the FOLDER of `poplar_delete=move:FOLDER`: the Maildir++ folder
 * `<maildir>/.<name>`. Letters, digits, `_` and `-`, in parts joined by single dots (a nested
 * folder, `Archive.2026`), at most {@link MAX_FOLDER_NAME_LENGTH} characters, and not starting
 * with `poplar-` in any case (Poplar's own files are `.poplar-*`). No path can be built from it
 * that leaves the maildir.
 */
export function isValidFolderName(name: string): boolean {
  return (
    name.length <= MAX_FOLDER_NAME_LENGTH &&
    FOLDER_NAME.test(name) &&
    !name.toLowerCase().startsWith('poplar-')
  );
}

/**
 * Makes sure the Maildir++ folder `<dir>/.<folder>` exists with its `cur/`, `new/`, `tmp/` and
 * `maildirfolder` file (creating what is missing, so a folder half made by a crash is finished),
 * and that each is a real folder, not a symbolic link. Resolves to its `cur/`.
 */
/**
 * Creates a maildir's folder and its `cur/`, `new/` and `tmp/` where missing, and makes sure each
 * is a real directory: a symbolic link there could lead outside the mail root. For a user's maildir
 * and for a Maildir++ folder inside it.
 */
export async function ensureMaildirFolders(root: string, fs: MaildirFs): Promise<void> {
  for (const path of [root, join(root, 'cur'), join(root, 'new'), join(root, 'tmp')]) {
    try {
      if ((await fs.lstat(path)).isDirectory()) continue;
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
      await fs.mkdir(path);
      continue;
    }
    throw new Error(`${path} is not a directory (a symbolic link?)`);
  }
}

export async function ensureFolder(dir: string, folder: string, fs: MaildirFs): Promise<string> {
  if (!isValidFolderName(folder)) throw new Error(`invalid folder name ${JSON.stringify(folder)}`);
  const root = join(dir, `.${folder}`);
  await ensureMaildirFolders(root, fs);
  const marker = join(root, 'maildirfolder');
  try {
    await fs.lstat(marker);
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
    await fs.writeText(marker, '', true).catch((e: unknown) => {
      if (!isErrno(e, 'EEXIST')) throw e;
    });
  }
  return join(root, 'cur');
}

/** Attempts at a fresh name when the message's own name is taken in the folder. */
const MAX_NAME_ATTEMPTS = 5;

/**
 * Moves the message file at `from` into the folder `cur` (same file system), under its own name or,
 * if that is taken by another message, a fresh one (its base with `-P` and random hex). The move is
 * link(2) then unlink(2): link never replaces a file already there, which rename(2) would. A crash
 * between the two leaves the message in both folders, so it is listed again, never lost; moving
 * it again finds its own file already in the folder (same inode) and only unlinks the original.
 * A folder on another file system fails with EXDEV: nothing is copied.
 */
export async function moveIntoFolder(
  fs: MaildirFs,
  from: string,
  cur: string,
  file: MaildirName,
): Promise<string> {
  const info = file.name.slice(file.base.length);
  let target = join(cur, file.name);
  for (let attempt = 1; ; attempt++) {
    try {
      await fs.link(from, target);
      break;
    } catch (error) {
      if (!isErrno(error, 'EEXIST')) throw error;
    }
    if (await isSameFile(fs, from, target)) break;
    if (attempt >= MAX_NAME_ATTEMPTS) throw new Error(`no free name for ${file.base} in ${cur}`);
    target = join(cur, `${file.base}-P${randomBytes(4).toString('hex')}${info}`);
  }
  try {
    await fs.unlink(from);
  } catch (error) {
    // Removed meanwhile by another program: the copy in the folder is the message.
    if (!isErrno(error, 'ENOENT')) throw error;
  }
  return target;
}

async function isSameFile(fs: MaildirFs, a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([fs.lstat(a), fs.lstat(b)]);
  return sa.dev === sb.dev && sa.ino === sb.ino;
}
