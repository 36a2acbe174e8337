// The monitor's admin for the user-database daemon tests: an admins file holding `ops`, and
// poplarctl with ops' token.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { runPoplar, type RunningDaemon } from '../helpers/daemon.js';
import { monitorPort, runCtl, type CtlResult } from '../helpers/poplarctl.js';
import { tempDir } from '../helpers/temp-dir.js';

const OPS_TOKEN = 'opsToken-0000001';

/** An admins file (for `--admins`) with the admin `ops`; resolves to its path. */
export async function opsAdminsFile(t: TestContext): Promise<string> {
  const line = await runPoplar(t, ['hash-password', '--scheme', 'SSHA256', '--user', 'ops'], {
    input: `${OPS_TOKEN}\n`,
  });
  const path = join(await tempDir(t), 'admins');
  await writeFile(path, line.stdout);
  return path;
}

/** `poplarctl WORDS` against `d`'s monitor with ops' token, `input` on stdin. */
export const opsCtl =
  (t: TestContext, d: RunningDaemon) =>
  (words: readonly string[], input?: string): Promise<CtlResult> =>
    runCtl(t, ['--port', String(monitorPort(d.started)), ...words], {
      env: { POPLAR_TOKEN: OPS_TOKEN },
      ...(input === undefined ? {} : { input }),
    });
