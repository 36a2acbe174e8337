import type {
  CommitResult,
  Maildrop,
  MaildropChanges,
  MailStore,
  MessageContent,
  ReadOptions,
} from '../../src/mailstore/types.js';
import type { MailUser } from '../../src/user.js';

/** Replacements for some maildrop methods; each gets the wrapped maildrop to delegate to. */
export interface MaildropOverrides {
  read?(inner: Maildrop, uid: string, options: ReadOptions): Promise<MessageContent>;
  commit?(inner: Maildrop, changes: MaildropChanges): Promise<CommitResult>;
  close?(inner: Maildrop): Promise<void>;
}

/**
 * A store that delegates to `inner` (usually a `MemoryStore`, which keeps the locking and the
 * contents) but lets a test replace what a maildrop does: fail, stall, or record its arguments.
 */
export function wrapStore(inner: MailStore, overrides: MaildropOverrides): MailStore {
  return {
    async open(user: MailUser, signal: AbortSignal): Promise<Maildrop> {
      const drop = await inner.open(user, signal);
      return {
        messages: drop.messages,
        read: (uid, options) =>
          overrides.read ? overrides.read(drop, uid, options) : drop.read(uid, options),
        commit: (changes) => (overrides.commit ? overrides.commit(drop, changes) : drop.commit(changes)),
        close: () => (overrides.close ? overrides.close(drop) : drop.close()),
      };
    },
  };
}

/** A promise with its resolve function, for a test to release a stalled store call. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Waits for `promise`, or rejects with the signal's reason when it aborts first (as a store must). */
export async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  let onAbort = (): void => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
