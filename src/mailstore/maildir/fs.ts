import { randomBytes } from 'node:crypto';
import {
  accessSync,
  close,
  closeSync,
  constants,
  type Dirent,
  existsSync,
  fstat,
  fstatSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  open,
  openSync,
  read,
  readdirSync,
  readFile as readFileOfFd,
  readFileSync,
  readlinkSync,
  lutimesSync,
  readSync,
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
  lutimes,
  mkdir,
  open as openFile,
  readdir,
  readlink,
  rename,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { asError } from '../../errors.js';

/**
 * The file-system calls of the Maildir store (folders, lock, size index, flags). Two kinds:
 * {@link threadPoolFs} hands each call to libuv's thread pool; {@link blockingFs} makes it on the
 * spot. On a local disk whose metadata is in the page cache a call takes microseconds, while a
 * trip through the thread pool costs tens of microseconds of CPU (thread wake-ups and an event
 * loop turn), several times the call itself: a login makes about twenty of them. Both kinds
 * return promises, rejected with the same `code`s, so the code above them is one. Every file the
 * store touches, message files included, is touched through this interface.
 */
export interface MaildirFs {
  /** Whether calls block the event loop: then long runs of them must pause now and then. */
  readonly isBlocking: boolean;
  lstat(path: string | Buffer): Promise<Stats>;
  /** Creates a folder and its missing parents, mode 0700. */
  mkdir(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readdirEntries(path: string): Promise<Dirent[]>;
  /** The entries with their names as bytes: for names that are not UTF-8 (see `undecodable.ts`). */
  readdirRawEntries(path: string): Promise<Dirent<Buffer>[]>;
  /**
   * A regular file's text; anything else (a FIFO, a device) is refused without waiting, and so is a
   * file of more than `maxBytes` (EFBIG).
   */
  readText(path: string, maxBytes?: number): Promise<string>;
  /**
   * The same, with the file's status taken from the open descriptor: on NFS, opening revalidates
   * the cached attributes (close-to-open), so the mtime is the server's, not a cached one.
   */
  readTextStat(path: string, maxBytes?: number): Promise<{ text: string; stats: Stats }>;
  /** Sets the mtime (and atime) of what is at `path`, not following a symbolic link, to now. */
  touch(path: string): Promise<void>;
  /** The mtime of what is at `path` (not following a symbolic link), in nanoseconds. */
  mtimeNs(path: string): Promise<bigint>;
  /** Writes a new file, mode 0600: `exclusive` fails with EEXIST if the name is taken. */
  writeText(path: string, text: string, exclusive: boolean): Promise<void>;
  /** Writes a new file (mode 0600, EEXIST if the name is taken) and fsync(2)s it before resolving. */
  writeTextSynced(path: string, text: string): Promise<void>;
  /** fsync(2) of a folder: a rename or unlink in it survives a power loss. */
  syncFolder(path: string): Promise<void>;
  access(path: string): Promise<void>;
  /** Whether something is at `path` (following a symbolic link), without an exception when not. */
  exists(path: string): Promise<boolean>;
  link(existing: string | Buffer, path: string): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  readlink(path: string): Promise<string>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string | Buffer): Promise<void>;
  /**
   * Opens a file for reading, refusing a symbolic link (ELOOP) and anything but a regular file
   * ({@link NotRegularFileError}), without ever waiting (a FIFO would wait for a writer); resolves
   * to its descriptor.
   */
  openForReading(path: string): Promise<number>;
  /** One pread(2) into the whole of `buffer`, at `position`; resolves to the bytes read (0 at the end). */
  readAt(fd: number, buffer: Buffer, position: number): Promise<number>;
  close(fd: number): Promise<void>;
}

/**
 * Opens for reading, refusing a symbolic link (a message file is never a way out of the maildir),
 * and never waiting: open(2) of a FIFO without O_NONBLOCK waits for a writer, which with blocking
 * calls freezes the whole process. O_NONBLOCK changes nothing for a regular file.
 */
const READ_NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const READ_NO_WAIT = constants.O_RDONLY | constants.O_NONBLOCK;

/** A FIFO, socket, device or folder where a regular file was expected: refused, never read. */
export class NotRegularFileError extends Error {
  override name = 'NotRegularFileError';
  readonly code = 'EFTYPE';
  constructor(path: string) {
    super(`not a regular file: ${path}`);
  }
}

/** `fd` if it is a regular file (of at most `maxBytes`); otherwise it is closed and an error thrown. */
function regularOnly(fd: number, stats: Stats, path: string, maxBytes = Infinity): number {
  if (stats.isFile() && stats.size <= maxBytes) return fd;
  closeSync(fd);
  if (!stats.isFile()) throw new NotRegularFileError(path);
  throw Object.assign(new Error(`${path} is bigger than ${maxBytes} bytes`), { code: 'EFBIG' });
}

/** Opens without waiting, checks the descriptor is a regular file: through the thread pool. */
function openRegular(path: string, flags: number, maxBytes?: number): Promise<number> {
  return openRegularStat(path, flags, maxBytes).then(({ fd }) => fd);
}

function openRegularStat(
  path: string,
  flags: number,
  maxBytes?: number,
): Promise<{ fd: number; stats: Stats }> {
  return viaCallback<number>((done) => {
    open(path, flags, done);
  }).then((fd) =>
    viaCallback<Stats>((done) => {
      fstat(fd, done);
    }).then(
      (stats) => ({ fd: regularOnly(fd, stats, path, maxBytes), stats }),
      (error: unknown) => {
        closeSync(fd);
        throw asError(error);
      },
    ),
  );
}

/** The same with blocking calls. */
function openRegularSync(path: string, flags: number, maxBytes?: number): number {
  return openRegularStatSync(path, flags, maxBytes).fd;
}

function openRegularStatSync(path: string, flags: number, maxBytes?: number): { fd: number; stats: Stats } {
  const fd = openSync(path, flags);
  let stats: Stats;
  try {
    stats = fstatSync(fd);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return { fd: regularOnly(fd, stats, path, maxBytes), stats };
}

/** A regular file's whole text and status through its descriptor (closed after). */
function readTextStatSync(path: string, maxBytes: number | undefined): { text: string; stats: Stats } {
  const { fd, stats } = openRegularStatSync(path, READ_NO_WAIT, maxBytes);
  try {
    return { text: readFileSync(fd, 'utf8'), stats };
  } finally {
    closeSync(fd);
  }
}

/**
 * A callback-style call as a promise: one thread-pool trip, and no FileHandle to track (cheaper
 * than node:fs/promises for a descriptor that lives a few microseconds).
 */
function viaCallback<T>(
  call: (done: (error: NodeJS.ErrnoException | null, value: T) => void) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    call((error, value) => {
      if (error === null) resolve(value);
      else reject(error);
    });
  });
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
  readdirRawEntries: (path) => readdir(path, { withFileTypes: true, encoding: 'buffer' }),
  readText: async (path, maxBytes) => (await threadPoolFs.readTextStat(path, maxBytes)).text,
  readTextStat: async (path, maxBytes) => {
    const { fd, stats } = await openRegularStat(path, READ_NO_WAIT, maxBytes);
    try {
      const text = await viaCallback<string>((done) => {
        readFileOfFd(fd, 'utf8', done);
      });
      return { text, stats };
    } finally {
      closeSync(fd);
    }
  },
  touch: (path) => {
    const now = new Date();
    return lutimes(path, now, now);
  },
  mtimeNs: async (path) => (await lstat(path, { bigint: true })).mtimeNs,
  writeText: (path, text, exclusive) =>
    writeFile(path, text, { mode: FILE_MODE, flag: exclusive ? 'wx' : 'w' }),
  writeTextSynced: async (path, text) => {
    const handle = await openFile(path, 'wx', FILE_MODE);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  syncFolder: async (path) => {
    const handle = await openFile(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  access: (path) => access(path),
  exists: (path) =>
    access(path).then(
      () => true,
      () => false,
    ),
  link: (existing, path) => link(existing, path),
  symlink: (target, path) => symlink(target, path),
  readlink: (path) => readlink(path),
  rename: (from, to) => rename(from, to),
  unlink: (path) => unlink(path),
  openForReading: (path) => openRegular(path, READ_NO_FOLLOW),
  readAt: (fd, buffer, position) =>
    viaCallback((done) => {
      read(fd, buffer, 0, buffer.length, position, done);
    }),
  close: (fd) =>
    new Promise((resolve, reject) => {
      close(fd, (error) => {
        if (error === null) resolve();
        else reject(error);
      });
    }),
};

/** Runs a blocking call, turning its result or its exception into a settled promise. */
function settled<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (error) {
    // Node's fs calls throw Errors (with a code): passed on as they are.
    return Promise.reject(asError(error));
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
  readdirRawEntries: (path) => settled(() => readdirSync(path, { withFileTypes: true, encoding: 'buffer' })),
  readText: (path, maxBytes) => settled(() => readTextStatSync(path, maxBytes).text),
  readTextStat: (path, maxBytes) => settled(() => readTextStatSync(path, maxBytes)),
  touch: (path) =>
    settled(() => {
      const now = new Date();
      lutimesSync(path, now, now);
    }),
  mtimeNs: (path) => settled(() => lstatSync(path, { bigint: true }).mtimeNs),
  writeText: (path, text, exclusive) =>
    settled(() => {
      writeFileSync(path, text, { mode: FILE_MODE, flag: exclusive ? 'wx' : 'w' });
    }),
  writeTextSynced: (path, text) =>
    settled(() => {
      const fd = openSync(path, 'wx', FILE_MODE);
      try {
        writeFileSync(fd, text);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }),
  syncFolder: (path) =>
    settled(() => {
      const fd = openSync(path, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }),
  access: (path) =>
    settled(() => {
      accessSync(path);
    }),
  exists: (path) => Promise.resolve(existsSync(path)),
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
  openForReading: (path) => settled(() => openRegularSync(path, READ_NO_FOLLOW)),
  readAt: (fd, buffer, position) => settled(() => readSync(fd, buffer, 0, buffer.length, position)),
  close: (fd) =>
    settled(() => {
      closeSync(fd);
    }),
};

/**
 * For a run of file calls: a function to call between two of them. With blocking calls it lets the
 * event loop serve other sessions once `burstMs` have passed since the run (or the last such
 * pause) began; through the thread pool other sessions are served anyway, so it does nothing.
 */
export function pauser(fs: MaildirFs, burstMs: number): () => Promise<void> | undefined {
  if (!fs.isBlocking) return () => undefined;
  let burstEnd = performance.now() + burstMs;
  return () => {
    if (performance.now() < burstEnd) return undefined;
    return new Promise<void>((resolve) => {
      setImmediate(() => {
        burstEnd = performance.now() + burstMs;
        resolve();
      });
    });
  };
}

/**
 * Replaces the file at `path` with `text` atomically: written to a new temporary file beside it
 * (`<path>.<random>.tmp`, flushed first when `synced`), then renamed over it; the temporary file is
 * removed when a step fails. {@link isTemporaryOf} recognises one left by a crash.
 */
export async function replaceFile(
  fs: MaildirFs,
  path: string,
  text: string,
  options: { readonly synced?: boolean } = {},
): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await (options.synced === true ? fs.writeTextSynced(tmp, text) : fs.writeText(tmp, text, true));
    await fs.rename(tmp, path);
  } catch (error) {
    await fs.unlink(tmp).catch(() => undefined);
    throw error;
  }
}

/** Whether `name` is a temporary file of {@link replaceFile} for the file named `file`. */
export function isTemporaryOf(name: string, file: string): boolean {
  return name.startsWith(`${file}.`) && name.endsWith('.tmp');
}
