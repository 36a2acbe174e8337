import { join } from 'node:path';
import { asError, isErrno } from '../../errors.js';
import type { MaildropLease } from '../locks.js';
import { deleteByPolicy, withScannedFile, type PolicyRun } from './deletion.js';
import { pauser } from './fs.js';
import { isPast } from './policy-state.js';
import type { ScannedMessage } from './scan.js';

/**
 * The policy work of opening a maildrop, with its lock held, after the scan and before its listing
 * is returned: forgets state entries whose file is gone; removes for good the messages kept
 * (`keep-days`) whose term is past; applies the delete policy to messages first retrieved more
 * than EXPIRE days ago; and leaves hidden and kept messages out of the listing. A maildrop with no
 * state costs nothing here. Deletions need the lease confirmed and stop when it is lost; what is not
 * done now is done at a later open.
 */
export async function sweepAtOpen(
  run: PolicyRun,
  lease: MaildropLease,
  scanned: ScannedMessage[],
): Promise<ScannedMessage[]> {
  const { state, log } = run;
  if (state.size === 0) return scanned;
  const byBase = new Map<string, ScannedMessage[]>();
  for (const m of scanned) {
    const same = byBase.get(m.file.base);
    if (same === undefined) byBase.set(m.file.base, [m]);
    else same.push(m);
  }
  let isChanged = false;
  const now = run.now();
  const { expire } = run.policy;
  const due: ScannedMessage[] = [];
  const expired: ScannedMessage[] = [];
  for (const [base, entry] of state.entries()) {
    const files = byBase.get(base);
    if (files === undefined) {
      // Its file is gone (deleted by another program, or by a sweep that crashed before saving).
      state.delete(base);
      isChanged = true;
    } else if (entry.kind === 'kept' && isPast(entry.atMs, entry.days, now)) {
      due.push(...files);
    } else if (
      entry.kind === 'retrieved' &&
      typeof expire === 'number' &&
      expire > 0 &&
      isPast(entry.atMs, expire, now)
    ) {
      expired.push(...files);
    }
  }
  const removed = new Set<ScannedMessage>();
  if (due.length + expired.length > 0 && (await isConfirmed(run, lease))) {
    // Files first, then the state: a crash between leaves entries for files that are gone, forgotten above next time.
    for (const m of await removeKept(run, due)) {
      removed.add(m);
      if (state.delete(m.file.base)) isChanged = true;
    }
    const notExpired = new Set(await deleteByPolicy(run, expired, withScannedFile(run.dir)));
    for (const m of expired) {
      if (notExpired.has(m) || state.isHidden(m.file.base)) continue; // hidden or kept: saved already
      removed.add(m);
      if (state.delete(m.file.base)) isChanged = true;
    }
    if (expired.length > 0) log.info({ messages: expired.length - notExpired.size }, 'EXPIRE applied');
  }
  if (isChanged) {
    try {
      await state.save();
    } catch (error) {
      log.warn({ err: asError(error) }, 'policy state not saved');
    }
  }
  return scanned.filter((m) => !removed.has(m) && !state.isHidden(m.file.base));
}

async function isConfirmed(run: PolicyRun, lease: MaildropLease): Promise<boolean> {
  try {
    await lease.confirm();
    return true;
  } catch (error) {
    run.log.error({ err: asError(error) }, 'maildrop no longer ours: nothing swept');
    return false;
  }
}

/** Unlinks kept messages whose term is past; resolves to those removed (or already gone). */
async function removeKept(run: PolicyRun, due: readonly ScannedMessage[]): Promise<ScannedMessage[]> {
  const removed: ScannedMessage[] = [];
  const pause = pauser(run.fs, run.burstMs);
  for (const m of due) {
    await pause();
    if (run.lost.aborted) break;
    try {
      await run.fs.unlink(join(run.dir, 'cur', m.file.name));
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) {
        run.log.error({ file: m.file.name, err: asError(error) }, 'cannot remove kept message');
        continue;
      }
    }
    removed.push(m);
  }
  if (removed.length > 0) run.log.info({ messages: removed.length }, 'kept messages removed');
  return removed;
}
