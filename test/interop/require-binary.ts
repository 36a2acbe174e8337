import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';

/** Where `name` is on PATH, or undefined. */
export async function findBinary(name: string): Promise<string | undefined> {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const path = join(dir, name);
    try {
      await access(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The path of a real client the test needs. When it is missing the test is skipped, except in CI
 * (`CI=true`), where `.ci/run` installs every client and a missing one is an error.
 */
export async function requireBinary(t: TestContext, name: string): Promise<string | undefined> {
  const path = await findBinary(name);
  if (path !== undefined) return path;
  if (process.env['CI'] === 'true') throw new Error(`${name} is not installed; .ci/run must install it`);
  t.skip(`${name} is not installed`);
  return undefined;
}
