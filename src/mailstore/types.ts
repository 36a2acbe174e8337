import type { Readable } from 'node:stream';
import type { MailUser } from '../user.js';

/** One message of a maildrop snapshot. */
export interface MessageInfo {
  /**
   * Unique id for UIDL (RFC 1939 section 7): 1 to 70 characters in 0x21-0x7E, the same for this
   * message in every session, never given to another message of the same maildrop.
   */
  readonly uid: string;
  /** Octets RETR sends, every line end counted as CRLF, before byte-stuffing. */
  readonly size: number;
  /**
   * True when the stored bytes are already exactly what RETR sends before its final `.` line: CRLF
   * line ends only, no line starting with `.`, a final CRLF. The engine then sends them without
   * rewriting (it still makes sure no `.` line can end the reply early). Absent means false.
   */
  readonly isVerbatim?: boolean;
}

/** A message's stored bytes: a stream to read to its end or destroy, or a whole (small) message in one buffer. */
export type MessageContent = Readable | Buffer;

/**
 * Optional capability of a streamed {@link MessageContent}: reads the next bytes into the caller's
 * buffer, so that a long message goes out through one reused buffer instead of a new one per
 * chunk (new buffers are memory outside the JavaScript heap, and enough of it brings on a full
 * garbage collection: two per 100 MB message). A caller reads either this way or as a stream.
 */
export interface ChunkReader {
  /** The size of the buffers to read into: {@link ReadOptions.chunkBytes}. */
  readonly chunkBytes: number;
  /** Fills `buffer` from the start with the next bytes; resolves to their count, 0 at the end. */
  readInto(buffer: Buffer): Promise<number>;
}

/** Whether a message's stream can also be read through {@link ChunkReader}. */
export const canReadInto = (content: object): content is ChunkReader =>
  typeof (content as Partial<ChunkReader>).readInto === 'function';

/** How the engine asks for a message's bytes. */
export interface ReadOptions {
  readonly signal: AbortSignal;
  /**
   * Preferred size of the chunks read from storage. A small message may be returned whole, as one
   * buffer: one read instead of a stream (the Maildir store does so up to twice this size).
   */
  readonly chunkBytes?: number;
}

/** What UPDATE (RFC 1939 section 6) asks the store to do. */
export interface MaildropChanges {
  /** Remove these messages for good. */
  readonly deleted: readonly string[];
  /** These were retrieved in full (RETR); a store may mark them as seen. */
  readonly retrieved: readonly string[];
}

/** What UPDATE achieved. */
export interface CommitResult {
  /** Uids that could not be removed (the client gets `-ERR`); they stay in the maildrop. */
  readonly notDeleted: readonly string[];
}

/**
 * A mailbox opened for one POP3 session, holding its exclusive lock until {@link close}.
 * Message numbers are indexes into {@link messages} plus one and never change in a session.
 */
export interface Maildrop {
  /** Snapshot taken when the maildrop was opened, in delivery order. */
  readonly messages: readonly MessageInfo[];
  /**
   * The stored bytes of one message, as a stream (the caller reads it to the end or destroys it)
   * or, for a small message, as one buffer. Line ends may be LF or CRLF: the engine normalises and
   * byte-stuffs. A message that has vanished since the snapshot rejects with {@link MessageGoneError}.
   */
  read(uid: string, options: ReadOptions): Promise<MessageContent>;
  /** UPDATE state, after QUIT: apply the session's changes. Never called otherwise. */
  commit(changes: MaildropChanges): Promise<CommitResult>;
  /** Called exactly once, after QUIT, an error or a disconnect. Releases the lock. */
  close(): Promise<void>;
}

/**
 * Optional capability of a maildrop whose lock can be lost during the session (a lease that could
 * not be refreshed, a lock another node broke as stale): `lost` aborts then, and the engine ends
 * the session without UPDATE. Found at run time ({@link canLoseMaildrop}).
 */
export interface MaildropWithLoss extends Maildrop {
  readonly lost: AbortSignal;
}

export const canLoseMaildrop = (maildrop: Maildrop): maildrop is MaildropWithLoss =>
  (maildrop as Partial<MaildropWithLoss>).lost instanceof AbortSignal;

/** Where the mail is: opens one user's maildrop per session. Every store runs `test/contract/mailstore.contract.ts`. */
export interface MailStore {
  /**
   * Opens the user's maildrop and takes its exclusive lock (RFC 1939 section 8). Rejects with a
   * `Pop3Error` coded `IN-USE` when another session holds it.
   */
  open(user: MailUser, signal: AbortSignal): Promise<Maildrop>;
}
