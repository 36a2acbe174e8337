import { Pop3Error, RespCode } from '../errors.js';
import type { Logger } from '../log.js';
import { lockLostError, type LosableMaildropLease } from './locks.js';

/**
 * A lease its holder keeps alive: refreshed every third of the TTL while held (a timer that never
 * keeps the process alive), and lost when a refresh finds it another's or it could not be refreshed
 * in time; {@link lost} aborts then and the timer stops. The lock file and the Redis lease differ
 * only in how they refresh and how they give the lease up.
 */
export abstract class RefreshedLease implements LosableMaildropLease {
  protected readonly log: Logger;
  protected readonly user: string;
  protected readonly ttlMs: number;
  readonly #lost = new AbortController();
  readonly #timer: NodeJS.Timeout;
  #isHeld = true;
  #isRefreshing = false;

  constructor(ttlMs: number, log: Logger, user: string) {
    this.ttlMs = ttlMs;
    this.log = log;
    this.user = user;
    this.#timer = setInterval(
      () => {
        if (!this.#isRefreshing) void this.#refresh();
      },
      Math.max(1, Math.floor(ttlMs / 3)),
    ).unref();
  }

  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  protected isLost(): boolean {
    return this.#lost.signal.aborted;
  }

  /**
   * Refreshes the lease; resolves to whether it is ours and safe to act on now. Calls {@link lose}
   * when it is not ours any more, or could not be refreshed in time.
   */
  protected abstract refresh(): Promise<boolean>;

  /** Gives up a lease that was held (once, after the timer stopped); {@link isLost} says how it ended. */
  protected abstract giveUp(): Promise<void>;

  async #refresh(): Promise<boolean> {
    if (!this.#isHeld || this.isLost()) return false;
    this.#isRefreshing = true;
    try {
      return await this.refresh();
    } finally {
      this.#isRefreshing = false;
    }
  }

  protected lose(fields: object, message: string): void {
    if (this.isLost() || !this.#isHeld) return;
    clearInterval(this.#timer);
    this.log.warn({ user: this.user, ...fields }, message);
    this.#lost.abort();
  }

  /**
   * In UPDATE, before any delete: the lease is refreshed on the spot and must still be ours, so
   * that the deletes that follow have most of a TTL (the refresh timer goes on meanwhile, and they
   * stop once the lease is lost).
   */
  async confirm(): Promise<void> {
    if (!this.#isHeld)
      throw new Pop3Error('maildrop lock was released', RespCode.sysTemp, { text: 'lockReleased' });
    if (this.isLost()) throw lockLostError();
    if (await this.#refresh()) return;
    if (this.isLost()) throw lockLostError();
    throw new Pop3Error('mailbox unavailable, try again later', RespCode.sysTemp, {
      text: 'mailboxUnavailable',
    });
  }

  /** Gives the lease up if it is still ours; a second call does nothing. */
  async release(): Promise<void> {
    if (!this.#isHeld) return;
    this.#isHeld = false;
    clearInterval(this.#timer);
    await this.giveUp();
  }
}
