import { MessageGoneError } from '../errors.js';
import { measureMessage } from '../message/octets.js';
import type { MailUser } from '../user.js';
import { ProcessMaildropLocks } from './locks.js';
import type { CommitResult, Maildrop, MaildropChanges, MailStore, MessageInfo } from './types.js';

interface StoredMessage {
  readonly uid: string;
  readonly bytes: Buffer;
  isSeen: boolean;
}

/**
 * A mail store held in memory: the reference implementation of {@link MailStore}, used by tests
 * and by programs that produce mail on the fly. It proves that the engine needs nothing of Maildir.
 */
export class MemoryStore implements MailStore {
  readonly #boxes = new Map<string, StoredMessage[]>();
  readonly #locks = new ProcessMaildropLocks();
  #nextUid = 1;

  constructor(mailboxes: Readonly<Record<string, readonly (string | Uint8Array)[]>> = {}) {
    for (const [user, messages] of Object.entries(mailboxes)) {
      for (const message of messages) this.deliver(user, message);
    }
  }

  /** Adds a message to the end of a user's mailbox; returns its uid. */
  deliver(user: string, message: string | Uint8Array): string {
    const uid = `m${this.#nextUid++}`;
    const box = this.#boxes.get(user) ?? [];
    box.push({ uid, bytes: Buffer.from(message), isSeen: false });
    this.#boxes.set(user, box);
    return uid;
  }

  /** The messages now in a user's mailbox (a copy), with whether each was marked seen. */
  contents(user: string): { uid: string; bytes: Buffer; isSeen: boolean }[] {
    return (this.#boxes.get(user) ?? []).map((m) => ({ ...m }));
  }

  /** Removes one message behind the back of any open session (as another program might). */
  expunge(user: string, uid: string): void {
    const box = this.#boxes.get(user);
    if (box !== undefined)
      this.#boxes.set(
        user,
        box.filter((m) => m.uid !== uid),
      );
  }

  async open(user: MailUser): Promise<Maildrop> {
    const lease = await this.#locks.acquire({ user: user.name, path: user.name });
    const box = this.#boxes.get(user.name) ?? [];
    this.#boxes.set(user.name, box);
    const messages: MessageInfo[] = box.map((m) => {
      const { size, isVerbatim } = measureMessage(m.bytes);
      return { uid: m.uid, size, isVerbatim };
    });
    const find = (uid: string): StoredMessage | undefined =>
      this.#boxes.get(user.name)?.find((m) => m.uid === uid);
    return {
      messages,
      read: (uid: string) => {
        const found = find(uid);
        if (found === undefined) return Promise.reject(new MessageGoneError());
        return Promise.resolve(found.bytes);
      },
      commit: async (changes: MaildropChanges): Promise<CommitResult> => {
        await lease.confirm();
        const gone = new Set(changes.deleted);
        for (const uid of changes.retrieved) {
          const found = find(uid);
          if (found !== undefined) found.isSeen = true;
        }
        this.#boxes.set(
          user.name,
          (this.#boxes.get(user.name) ?? []).filter((m) => !gone.has(m.uid)),
        );
        return { notDeleted: [] };
      },
      close: () => lease.release(),
    };
  }
}
