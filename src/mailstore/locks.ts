import { Pop3Error, RespCode } from '../errors.js';

/** Which maildrop a lock is for. */
export interface MaildropKey {
  /** The user whose maildrop it is (valid under `isValidUserName`). */
  readonly user: string;
  /** Where the store keeps that maildrop (for the Maildir store, the user's folder). */
  readonly path: string;
}

/** The exclusive right of one session to one maildrop, from acquire to release. */
export interface MaildropLease {
  /**
   * Resolves if the lease is still this session's, and rejects with a `Pop3Error` otherwise. The
   * store asks it in UPDATE, before deleting anything: a session that lost its maildrop (its lock
   * broken as stale, a lease that expired) deletes nothing.
   */
  confirm(): Promise<void>;
  /** Gives the maildrop up; a second call does nothing. */
  release(): Promise<void>;
}

/**
 * Optional capability of a lease that can be lost while held (a lock another node broke as stale,
 * a lease that could not be refreshed in time): `lost` aborts then. Found at run time
 * ({@link canBeLost}); a lease without it is lost only through a failing `confirm()`.
 */
export interface LosableMaildropLease extends MaildropLease {
  readonly lost: AbortSignal;
}

export const canBeLost = (lease: MaildropLease): lease is LosableMaildropLease =>
  (lease as Partial<LosableMaildropLease>).lost instanceof AbortSignal;

/**
 * Optional capability of a lease with a fencing number: it rises every time the maildrop's lock is
 * taken (after a release or from a dead holder), so a holder can be told from its successors.
 */
export interface FencedMaildropLease extends MaildropLease {
  readonly fencing: number;
}

export const isFenced = (lease: MaildropLease): lease is FencedMaildropLease =>
  typeof (lease as Partial<FencedMaildropLease>).fencing === 'number';

/**
 * The exclusive maildrop lock of RFC 1939 section 8, apart from where the mail is kept: the Maildir
 * store takes it through this interface, so that a lock shared by several machines can replace the
 * lock file without a change to the store. Every implementation runs the contract suite in
 * `test/contract/locks.contract.ts`.
 */
export interface MaildropLocks {
  /**
   * Takes the maildrop's lock. Rejects with a `Pop3Error` coded `IN-USE` when another session
   * holds it, and with one coded `SYS/TEMP` when it cannot be taken now.
   */
  acquire(key: MaildropKey): Promise<MaildropLease>;
}

export const inUseError = (): Pop3Error =>
  new Pop3Error('maildrop is in use by another session', RespCode.inUse, { text: 'inUse' });

/** What `confirm()` rejects with once the maildrop is no longer the session's. */
export const lockLostError = (): Pop3Error =>
  new Pop3Error('maildrop lock lost', RespCode.sysTemp, { text: 'lockLost' });

/** Locks good within one process: for stores whose mail lives in this process only (the MemoryStore). */
export class ProcessMaildropLocks implements MaildropLocks {
  readonly #held = new Set<string>();

  acquire(key: MaildropKey): Promise<MaildropLease> {
    const id = `${key.user}\0${key.path}`;
    if (this.#held.has(id)) return Promise.reject(inUseError());
    this.#held.add(id);
    let isHeld = true;
    return Promise.resolve({
      confirm: () =>
        isHeld
          ? Promise.resolve()
          : Promise.reject(
              new Pop3Error('maildrop lock was released', RespCode.sysTemp, { text: 'lockReleased' }),
            ),
      release: () => {
        if (isHeld) this.#held.delete(id);
        isHeld = false;
        return Promise.resolve();
      },
    });
  }
}
