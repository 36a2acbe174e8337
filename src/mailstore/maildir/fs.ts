import {
  accessSync,
  type Dirent,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  type Stats,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import {
  access,
  link,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';

/**
 * The file-system calls of the Maildir store (folders, lock, size index, flags). Two kinds:
 * {@link threadPoolFs} hands each call to libuv's thread pool; {@link blockingFs} makes it on the
 * spot. On a local disk whose metadata is in the page cache a call takes microseconds, while a
 * trip through the thread pool costs tens of microseconds of CPU (thread wake-ups and an event
 * loop turn), several times the call itself: a login makes about twenty of them. Both kinds
 * return promises, rejected with the same `code`s, so the code above them is one.
 */
export interface MaildirFs {
  /** Whether calls block the event loop: then long runs of them must pause now and then. */
  readonly isBlocking: boolean;
  lstat(path: string): Promise<Stats>;
  /** Creates a folder and its missing parents, mode 0700. */
  mkdir(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readdirEntries(path: string): Promise<Dirent[]>;
  readText(path: string): Promise<string>;
  /** Writes a new file, mode 0600: `exclusive` fails with EEXIST if the name is taken. */
  writeText(path: string, text: string, exclusive: boolean): Promise<void>;
  access(path: string): Promise<void>;
  link(existing: string, path: string): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  readlink(path: string): Promise<string>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
}

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

export const threadPoolFs: MaildirFs = {
  isBlocking: false,
  lstat: (path) => lstat(path),
  mkdir: async (path) => {
    await mkdir(path, { recursive: true, mode: DIR_MODE });
  },
  readdir: (path) => readdir(path),
  readdirEntries: (path) => readdir(path, { withFileTypes: true }),
  readText: (path) => readFile(path, 'utf8'),
  writeText: (path, text, exclusive) =>
    writeFile(path, text, { mode: FILE_MODE, flag: exclusive ? 'wx' : 'w' }),
  access: (path) => access(path),
  link: (existing, path) => link(existing, path),
  symlink: (target, path) => symlink(target, path),
  readlink: (path) => readlink(path),
  rename: (from, to) => rename(from, to),
  unlink: (path) => unlink(path),
};

/** Runs a blocking call, turning its result or its exception into a settled promise. */
function settled<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (error) {
    // Node's fs calls throw Errors (with a code): passed on as they are.
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

export const blockingFs: MaildirFs = {
  isBlocking: true,
  lstat: (path) => settled(() => lstatSync(path)),
  mkdir: (path) =>
    settled(() => {
      mkdirSync(path, { recursive: true, mode: DIR_MODE });
    }),
  readdir: (path) => settled(() => readdirSync(path)),
  readdirEntries: (path) => settled(() => readdirSync(path, { withFileTypes: true })),
  readText: (path) => settled(() => readFileSync(path, 'utf8')),
  writeText: (path, text, exclusive) =>
    settled(() => {
      writeFileSync(path, text, { mode: FILE_MODE, flag: exclusive ? 'wx' : 'w' });
    }),
  access: (path) =>
    settled(() => {
      accessSync(path);
    }),
  link: (existing, path) =>
    settled(() => {
      linkSync(existing, path);
    }),
  symlink: (target, path) =>
    settled(() => {
      symlinkSync(target, path);
    }),
  readlink: (path) => settled(() => readlinkSync(path)),
  rename: (from, to) =>
    settled(() => {
      renameSync(from, to);
    }),
  unlink: (path) =>
    settled(() => {
      unlinkSync(path);
    }),
};
