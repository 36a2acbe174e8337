import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** A fresh temporary directory, removed after the test. */
export async function tempDir(t: TestContext, prefix = 'poplar-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  // Retried: a daemon still ending its sessions may write in it meanwhile (a user's ledger).
  t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 5 }));
  return dir;
}
