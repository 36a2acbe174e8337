import { join } from 'node:path';
import { asError, isErrno } from '../../errors.js';
import type { Logger } from '../../log.js';
import { lockLostError } from '../locks.js';
import type { DeletePolicy, UserPolicy } from '../../policy.js';
import { ensureFolder, isValidFolderName, moveIntoFolder } from './folder.js';
import { pauser, type MaildirFs } from './fs.js';
import { MAX_POLICY_DAYS, type PolicyState, type StateEntry } from './policy-state.js';
import type { ScannedMessage } from './scan.js';

/** What applying a user's policy to a maildrop needs; one per open maildrop. */
export interface PolicyRun {
  readonly dir: string;
  readonly fs: MaildirFs;
  readonly log: Logger;
  readonly state: PolicyState;
  readonly policy: UserPolicy;
  /** Milliseconds since 1970. */
  readonly now: () => number;
  /** Aborts when the maildrop's lease is lost: nothing more is deleted then. */
  readonly lost: AbortSignal;
  /** With blocking calls: the longest run of them before other sessions get a turn. */
  readonly burstMs: number;
}

/**
 * Runs `action` on the message's file (found again by its base name if another program renamed
 * it); resolves to undefined when the message is gone.
 */
export type WithMessageFile = <T>(
  message: ScannedMessage,
  action: (path: string) => Promise<T>,
) => Promise<T | undefined>;

/** `action` on `<dir>/cur/<name>`; a file already gone resolves to undefined. */
export const withScannedFile =
  (dir: string): WithMessageFile =>
  async (message, action) => {
    try {
      return await action(join(dir, 'cur', message.file.name));
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      throw error;
    }
  };

/** Why a delete policy cannot be applied (a library caller's mistake), or undefined if it can. */
export function deletePolicyProblem(policy: DeletePolicy): string | undefined {
  switch (policy.mode) {
    case 'expunge':
    case 'hide':
      return undefined;
    case 'move':
      return isValidFolderName(policy.folder) ? undefined : `invalid folder ${JSON.stringify(policy.folder)}`;
    case 'keep-days':
      return Number.isSafeInteger(policy.days) && policy.days >= 0 && policy.days <= MAX_POLICY_DAYS
        ? undefined
        : `invalid keep-days ${String(policy.days)}`;
    default:
      return `unknown delete mode ${JSON.stringify((policy as { mode: unknown }).mode)}`;
  }
}

/**
 * Applies the user's delete policy to `messages` (UPDATE's deletions, or messages EXPIRE
 * removes). Resolves to those not deleted, which stay listed. The caller has confirmed the lease;
 * nothing more is done once `run.lost` aborts. Each mode is ordered so that a crash at any point
 * leaves a message listed again, never lost:
 * - `expunge`: unlink(2), one file at a time.
 * - `hide`, `keep-days`: one write of the state file (fsync'ed, renamed into place): the files are
 *   not touched. Until the rename the messages are listed as before; after it, hidden.
 * - `move`: link(2) into the folder then unlink(2) (see `moveIntoFolder`).
 */
export async function deleteByPolicy(
  run: PolicyRun,
  messages: readonly ScannedMessage[],
  withFile: WithMessageFile,
): Promise<ScannedMessage[]> {
  if (messages.length === 0) return [];
  const policy = run.policy.delete;
  const problem = deletePolicyProblem(policy);
  if (problem !== undefined) {
    run.log.error({ policy: problem }, 'delete policy cannot be applied: nothing deleted');
    return [...messages];
  }
  if (isLost(run)) {
    run.log.error({ err: lockLostError() }, 'maildrop lost: nothing deleted');
    return [...messages];
  }
  if (policy.mode === 'hide' || policy.mode === 'keep-days') {
    const entry: StateEntry =
      policy.mode === 'hide' ? { kind: 'hidden' } : { kind: 'kept', atMs: run.now(), days: policy.days };
    return (await recordAll(run, messages, entry)) ? [] : [...messages];
  }
  let cur: string | undefined;
  if (policy.mode === 'move') {
    try {
      cur = await ensureFolder(run.dir, policy.folder, run.fs);
    } catch (error) {
      run.log.error({ folder: policy.folder, err: asError(error) }, 'cannot make the folder: nothing moved');
      return [...messages];
    }
  }
  const notDeleted: ScannedMessage[] = [];
  // Tens of thousands of renames or deletions (a big maildrop emptied) would otherwise block
  // every other session of this process until they are all done.
  const pause = pauser(run.fs, run.burstMs);
  for (const [index, message] of messages.entries()) {
    await pause();
    if (isLost(run)) {
      // Lost half-way (a refresh failed for too long): another node may hold the maildrop now.
      run.log.error(
        { err: lockLostError(), left: messages.length - index },
        'maildrop lost during UPDATE: the rest is not deleted',
      );
      notDeleted.push(...messages.slice(index));
      break;
    }
    try {
      // A message that is already gone counts as deleted.
      await withFile<unknown>(message, (path) =>
        cur === undefined ? run.fs.unlink(path) : moveIntoFolder(run.fs, path, cur, message.file),
      );
    } catch (error) {
      run.log.error(
        { file: message.file.name, err: asError(error) },
        cur === undefined ? 'cannot delete message' : 'cannot move message',
      );
      notDeleted.push(message);
    }
  }
  return notDeleted;
}

/** Whether the lease is lost (a function: the signal changes between two reads). */
const isLost = (run: PolicyRun): boolean => run.lost.aborted;

/**
 * Records `entry` for every message in one write of the state file; on failure the state is as
 * before and false is returned (logged).
 */
async function recordAll(
  run: PolicyRun,
  messages: readonly ScannedMessage[],
  entry: StateEntry,
): Promise<boolean> {
  const before = new Map(messages.map((m) => [m.file.base, run.state.get(m.file.base)]));
  for (const m of messages) run.state.set(m.file.base, entry);
  try {
    await run.state.save();
    return true;
  } catch (error) {
    for (const [base, old] of before) {
      if (old === undefined) run.state.delete(base);
      else run.state.set(base, old);
    }
    run.log.error({ err: asError(error) }, 'policy state not saved: nothing deleted');
    return false;
  }
}

/**
 * EXPIRE N: records the first retrieval of each message not yet recorded (in memory; the caller
 * saves). Returns whether anything was added. Nothing is recorded under EXPIRE `never` or 0.
 */
export function noteRetrievals(run: PolicyRun, messages: readonly ScannedMessage[]): boolean {
  const { expire } = run.policy;
  if (typeof expire !== 'number' || !(expire > 0) || messages.length === 0) return false;
  const atMs = run.now();
  let added = false;
  for (const m of messages) {
    if (run.state.get(m.file.base) !== undefined) continue;
    run.state.set(m.file.base, { kind: 'retrieved', atMs });
    added = true;
  }
  return added;
}
