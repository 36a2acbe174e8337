import type { Dirent } from 'node:fs';
import { join } from 'node:path';
import { asError, isErrno } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { MaildirFs } from './fs.js';

/** What `readdir` puts in place of bytes that are not UTF-8. */
const REPLACEMENT = '\uFFFD';
const PERCENT = 0x25;

/**
 * Lists a folder of messages. A name that is not valid UTF-8 cannot be used as a string (readdir
 * replaces its bad bytes with U+FFFD, and that name does not exist), so such a file is first
 * renamed, in its folder, to {@link safeNameOf} its bytes: from then on it is an ordinary message
 * whose name, and so UIDL, never changes. Nothing extra is read unless a listed name has U+FFFD.
 */
export async function listMessageFolder(folder: string, fs: MaildirFs, log: Logger): Promise<Dirent[]> {
  const entries = await fs.readdirEntries(folder);
  if (!entries.some((e) => e.name.includes(REPLACEMENT))) return entries;
  return (await renameUndecodable(folder, fs, log)) ? fs.readdirEntries(folder) : entries;
}

/**
 * The name a file whose name is not UTF-8 takes: its bytes with every byte of 0x80 or more, and
 * `%` itself, written `%XX` (so two different names never get the same one). Other bytes, the
 * `:2,` info part included, stay as they are.
 */
export function safeNameOf(raw: Buffer): string {
  let name = '';
  for (const byte of raw) {
    name +=
      byte >= 0x80 || byte === PERCENT
        ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
        : String.fromCharCode(byte);
  }
  return name;
}

function isUtf8(raw: Buffer): boolean {
  return Buffer.from(raw.toString('utf8'), 'utf8').equals(raw);
}

/** Renames the regular files of `folder` whose names are not UTF-8; true if any was renamed. */
async function renameUndecodable(folder: string, fs: MaildirFs, log: Logger): Promise<boolean> {
  let isRenamed = false;
  const folderBytes = Buffer.from(`${folder}/`);
  for (const entry of await fs.readdirRawEntries(folder)) {
    // Control characters are refused as they are (see isMessageEntry): no point in renaming.
    if (!entry.isFile() || isUtf8(entry.name) || entry.name.some((b) => b < 0x20 || b === 0x7f)) continue;
    const from = Buffer.concat([folderBytes, entry.name]);
    const name = safeNameOf(entry.name);
    const to = join(folder, name);
    try {
      // link, then unlink: never over an existing file (rename(2) would replace it).
      await fs.link(from, to);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) continue; // taken by another program meanwhile
      if (!isErrno(error, 'EEXIST') || !(await isSameFile(fs, from, to))) {
        log.error(
          { file: name, err: asError(error) },
          'cannot rename a message whose file name is not UTF-8',
        );
        continue;
      }
      // The same file under both names: an earlier rename stopped between link and unlink.
    }
    await fs.unlink(from).catch(() => undefined);
    log.warn({ file: name, folder }, 'message renamed: its file name was not UTF-8');
    isRenamed = true;
  }
  return isRenamed;
}

async function isSameFile(fs: MaildirFs, a: Buffer, b: string): Promise<boolean> {
  try {
    const [x, y] = await Promise.all([fs.lstat(a), fs.lstat(b)]);
    return x.ino === y.ino && x.dev === y.dev;
  } catch {
    return false;
  }
}
