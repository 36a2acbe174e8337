import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ProcessMaildropLocks } from '../../src/mailstore/locks.js';
import { blockingFs, threadPoolFs } from '../../src/mailstore/maildir/fs.js';
import { FileMaildropLocks, LOCK_FILE } from '../../src/mailstore/maildir/lock.js';
import { tempDir } from '../helpers/temp-dir.js';
import { describeMaildropLocks } from './locks.contract.js';

for (const fs of [blockingFs, threadPoolFs]) {
  describeMaildropLocks(
    `a lock file per maildir, blocking ${String(fs.isBlocking)}`,
    async (t) => {
      const root = await tempDir(t);
      const keyOf = async (user: string) => {
        const path = join(root, user);
        await mkdir(path, { recursive: true });
        return { user, path };
      };
      return {
        locks: new FileMaildropLocks(fs, { ttlMs: 1000 }),
        other: new FileMaildropLocks(fs, { ttlMs: 1000 }),
        ttlMs: 1000,
        keyOf,
        // Another host's session that broke this lock as stale and wrote its own.
        steal: async (key) => {
          await writeFile(join(key.path, LOCK_FILE), '4242 12345 another.host 0123456789abcdef\n');
        },
        // A node that died two days ago (finding 10: a container restarted under a new host name).
        abandon: async (key) => {
          const lock = join(key.path, LOCK_FILE);
          await writeFile(lock, '4242 12345 old-container-hostname 0011223344556677\n');
          const then = new Date(Date.now() - 2 * 86_400_000);
          await utimes(lock, then, then);
        },
      };
    },
    true,
  );
}

describeMaildropLocks(
  'locks within one process',
  () => {
    // Two lock sets of one process share nothing, so "the other" is the same set here.
    const locks = new ProcessMaildropLocks();
    return Promise.resolve({ locks, other: locks, keyOf: (user) => Promise.resolve({ user, path: user }) });
  },
  false,
);
