// A small tmpfs for tests of disk faults: full disk, no inodes left, read-only. Mounting needs root
// with CAP_SYS_ADMIN (CI runs as root); without the permission the test is skipped with the reason,
// except in CI (`CI=true`), where it fails: there these tests must run.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { onCI } from '../interop/require-binary.js';

const run = promisify(execFile);

const isErrno = (error: unknown, code: string): boolean =>
  (error as NodeJS.ErrnoException | undefined)?.code === code;

/**
 * Mounts a tmpfs with `options` (`size=1m`, `nr_inodes=64`) on `at`, an existing directory, or on a
 * fresh one; unmounted (and the fresh directory removed) after the test. Resolves to undefined
 * after skipping the test when mounting is not permitted here; throws instead when `CI=true`.
 */
export async function mountTmpfs(t: TestContext, options: string, at?: string): Promise<string | undefined> {
  const dir = at ?? (await mkdtemp(join(tmpdir(), 'poplar-tmpfs-')));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `${options},mode=0700`, 'tmpfs', dir]);
  } catch (error) {
    if (at === undefined) await rm(dir, { recursive: true, force: true });
    const stderr = String((error as { stderr?: unknown }).stderr ?? error)
      .trim()
      .replace(/\s+/g, ' ');
    const isRoot = process.getuid?.() === 0;
    if (!isRoot || /permission denied|not permitted|must be superuser|only root/i.test(stderr)) {
      const reason = `mounting a tmpfs is not permitted here (${stderr}); these tests need root with CAP_SYS_ADMIN`;
      if (onCI()) throw new Error(`${reason}; in CI they must run`, { cause: error });
      t.skip(reason);
      return undefined;
    }
    throw new Error(`mount -t tmpfs failed: ${stderr}`, { cause: error });
  }
  t.after(async () => {
    // Busy (a process still inside, a mount inside)? A lazy unmount detaches it anyway, with
    // whatever is mounted inside, which then needs no unmounting of its own.
    await run('umount', [dir])
      .catch(() => run('umount', ['-l', dir]))
      .catch(() => undefined);
    if (at === undefined) await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

export async function remount(dir: string, mode: 'ro' | 'rw'): Promise<void> {
  await run('mount', ['-o', `remount,${mode}`, dir]);
}

/** Appends to `path` until the file system has no block left (ENOSPC). */
export async function fillBlocks(path: string): Promise<void> {
  const handle = await open(path, 'a');
  try {
    // Big writes first, then smaller ones for the rest of the last page.
    for (const size of [65_536, 4096, 256, 16, 1]) {
      const chunk = Buffer.alloc(size, 0x78);
      for (;;) {
        try {
          const { bytesWritten } = await handle.write(chunk);
          if (bytesWritten < size) break;
        } catch (error) {
          if (isErrno(error, 'ENOSPC')) break;
          throw error;
        }
      }
    }
  } finally {
    await handle.close();
  }
}

/** Creates empty files in `dir` until the file system has no inode left (ENOSPC). */
export async function fillInodes(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let n = 0; ; n++) {
    try {
      await writeFile(join(dir, `f${n}`), '');
    } catch (error) {
      if (isErrno(error, 'ENOSPC')) return;
      throw error;
    }
  }
}
