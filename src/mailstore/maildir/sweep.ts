import { asError } from '../../errors.js';
import type { PolicyRun } from './deletion.js';
import type { ScannedMessage } from './scan.js';

/**
 * The policy work of opening a maildrop, with its lock held, after the scan and before its listing
 * is returned: forgets state entries whose file is gone, and leaves hidden messages out of the
 * listing. A maildrop with no state costs nothing here.
 */
export async function sweepAtOpen(run: PolicyRun, scanned: ScannedMessage[]): Promise<ScannedMessage[]> {
  const { state, log } = run;
  if (state.size === 0) return scanned;
  const bases = new Set(scanned.map((m) => m.file.base));
  let isChanged = false;
  for (const [base] of state.entries()) {
    if (bases.has(base)) continue;
    // Its file is gone (deleted by another program).
    state.delete(base);
    isChanged = true;
  }
  if (isChanged) {
    try {
      await state.save();
    } catch (error) {
      log.warn({ err: asError(error) }, 'policy state not saved');
    }
  }
  return scanned.filter((m) => !state.isHidden(m.file.base));
}
