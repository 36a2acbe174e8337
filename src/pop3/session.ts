import type { Authenticator } from '../auth/types.js';
import type { Logger } from '../log.js';
import {
  canLoseMaildrop,
  type Maildrop,
  type MailStore,
  type MessageContent,
  type MessageInfo,
} from '../mailstore/types.js';
import type { MailUser } from '../user.js';
import type { Pop3Limits } from './limits.js';
import type { AuthCache } from './auth-cache.js';
import type { ReplyWriter } from './reply.js';
import type { SaslMechanism } from './sasl/types.js';
import type { ServerStats } from './stats.js';
import type { TlsContexts } from './tls.js';
import type { Throttle } from './throttle.js';
import type { EnginePolicy, SessionUsage } from './usage.js';
import {
  DEFAULT_LANGUAGE,
  endingText,
  render,
  textError,
  textOf,
  type Language,
  type TextKey,
  type TextValues,
} from './text/index.js';

/**
 * Why a connection closed: the client sent QUIT, an administrator ended the session, a timer ran
 * out (idle, login, a client that stopped reading), the server shut down, an error ended it (too
 * many failures, an internal error, a failed TLS handshake), or the client went away.
 */
export type CloseReason = 'quit' | 'kicked' | 'timeout' | 'shutdown' | 'error' | 'client';

export interface ConnectionInfo {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Encrypted now: implicit TLS, or after STLS. */
  readonly isTls: boolean;
}

/** What a multi-step command (STLS, AUTH) needs from the connection beyond replying. */
export interface SessionChannel {
  /**
   * The client's next line, for SASL continuations: up to `maxBytes` bytes, undefined when it was
   * longer. Rejects with ConnectionGoneError when the client goes away.
   */
  readLine(maxBytes: number): Promise<Buffer | undefined>;
  /**
   * STLS: throws away anything the client sent after the command, writes `reply`, and starts the
   * TLS handshake. The session goes on once it succeeds.
   */
  startTls(reply: string): void;
  /**
   * Ends the session without UPDATE, telling the client `-ERR [SYS/TEMP] message`: at once when it
   * waits for a command, else after the command that is running.
   */
  end(message: string): void;
}

/** One command as it finished, for metrics: the verb (upper case, '' when there was none) and its outcome. */
export interface CommandInfo {
  readonly verb: string;
  readonly result: 'ok' | 'err' | 'protocol' | 'internal' | 'gone';
  readonly seconds: number;
}

export interface LoginInfo extends ConnectionInfo {
  readonly user: string;
}

/** RFC 1939 section 3 states. */
export type Pop3State = 'AUTHORIZATION' | 'TRANSACTION' | 'UPDATE';

/** What the engine shares between connections (the per-user policy's part: `EnginePolicy`). */
export interface EngineContext extends EnginePolicy {
  readonly authenticator: Authenticator;
  readonly store: MailStore;
  /** Replaced as a whole when an operator changes a limit at run time; read it when needed. */
  limits: Pop3Limits;
  readonly logger: Logger;
  readonly stats: ServerStats;
  readonly implementation: string;
  /** The server's name, for challenges (APOP timestamps, CRAM-MD5). */
  readonly hostname: string;
  /** Derives made-up credentials for names that do not exist (SCRAM's salt). */
  readonly decoySecret: Uint8Array;
  /** TLS contexts when certificates are configured (STLS offered, implicit TLS possible). */
  readonly tls: TlsContexts | undefined;
  /** Whether cleartext logins (USER/PASS, SASL PLAIN/LOGIN, bearer tokens) are allowed without TLS. */
  readonly allowCleartextLogin: boolean;
  /** Addresses treated like TLS for the cleartext policy; loopback by default. */
  readonly isLocalAddress: (address: string) => boolean;
  /** SASL mechanisms the server knows, by upper-case name. */
  readonly mechanisms: ReadonlyMap<string, SaslMechanism>;
  /** Called after every command (the server's `command` event). */
  readonly onCommand: (info: CommandInfo) => void;
  /** Called when a login succeeds (the server's `login` event). */
  readonly onLogin: (info: LoginInfo) => void;
  /** Failed logins by address and user name, across connections: the delays before answering. */
  readonly loginThrottle: Throttle;
  /** Passwords that logged users in lately, as keyed digests: repeat logins skip the slow hash. */
  readonly authCache: AuthCache;
}

/** What one session did, for the logout log line and the `close` event. */
export interface SessionSummary {
  retrievedMessages: number;
  retrievedBytes: number;
  topCount: number;
  deletedMessages: number;
  deletedBytes: number;
  remainingMessages: number;
  remainingBytes: number;
}

/**
 * The protocol state of one connection, as command handlers see it. The connection (socket loop,
 * timers) lives in `connection.ts`; the handlers in `commands/` change this object and reply.
 */
export class Session {
  info: ConnectionInfo;
  readonly engine: EngineContext;
  readonly reply: ReplyWriter;
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** The APOP challenge sent in the greeting (RFC 1939 section 7), when APOP is offered. */
  readonly apopTimestamp: string | undefined;

  state: Pop3State = 'AUTHORIZATION';
  /** The client sent UTF8 (RFC 6856): UTF-8 mode, for the logs (Poplar reads UTF-8 in any mode). */
  isUtf8 = false;
  /** The language of this session's texts (RFC 6856 LANG); `i-default` until LANG changes it. */
  language: Language = DEFAULT_LANGUAGE;
  /** Name given by USER, waiting for PASS. */
  pendingUser: string | undefined;
  user: MailUser | undefined;
  /** The user's effective policy and this session's usage, once logged in (user-policy.ts). */
  usage: SessionUsage | undefined;
  /** Run by {@link releaseMaildrop} while the lock is still held (the ledger's session end). */
  beforeRelease: (() => Promise<void>) | undefined;
  #maildrop: Maildrop | undefined;
  /** Stops listening for the loss of the maildrop's lock. */
  #unwatchLoss: (() => void) | undefined;
  /** The snapshot taken at login; kept after the maildrop is released, for the logout summary. */
  #messages: readonly MessageInfo[] = [];
  readonly deleted = new Set<number>();
  readonly retrieved = new Set<number>();
  authFailures = 0;
  readonly startedAt = Date.now();
  bytesIn = 0;
  bytesOut = 0;
  protocolErrors = 0;
  /** Set by QUIT and by fatal errors: the connection closes once the current reply is out. */
  isEnding = false;
  /** Why the session ends, when a command decided it (QUIT, too many errors...): see {@link CloseReason}. */
  closeReason: CloseReason | undefined;
  readonly summary: SessionSummary = {
    retrievedMessages: 0,
    retrievedBytes: 0,
    topCount: 0,
    deletedMessages: 0,
    deletedBytes: 0,
    remainingMessages: 0,
    remainingBytes: 0,
  };

  constructor(init: {
    info: ConnectionInfo;
    engine: EngineContext;
    reply: ReplyWriter;
    signal: AbortSignal;
    log: Logger;
    apopTimestamp: string | undefined;
  }) {
    this.info = init.info;
    this.engine = init.engine;
    this.reply = init.reply;
    this.signal = init.signal;
    this.log = init.log;
    this.apopTimestamp = init.apopTimestamp;
  }

  /** A text of the catalogue, in this session's language. */
  say<K extends TextKey>(key: K, ...values: TextValues<K>): string {
    return render(this.language.catalogue, textOf(key, ...values)) ?? key;
  }

  /**
   * Why the session ends, in its language: `message` is a text of the English catalogue (the
   * server's, the monitor's `account removed`), or a library's own words, sent as they are.
   */
  ending(message: string): string {
    return endingText(this.language.catalogue, message);
  }

  get remoteAddress(): string {
    return this.info.remoteAddress;
  }

  get isTls(): boolean {
    return this.info.isTls;
  }

  /** RFC 2595 section 2.4 / RFC 8314: may a secret travel in the clear on this connection? */
  get mayLogInCleartext(): boolean {
    const { engine } = this;
    return this.isTls || engine.allowCleartextLogin || engine.isLocalAddress(this.info.remoteAddress);
  }

  /** Set by the connection: reading continuation lines and starting TLS. */
  channel!: SessionChannel;

  /** After STLS: encrypted, and nothing from before the handshake is remembered (RFC 2595 section 4). */
  enterTls(): void {
    this.info = { ...this.info, isTls: true };
    this.pendingUser = undefined;
  }

  get maildrop(): Maildrop {
    if (this.#maildrop === undefined) throw new Error('no maildrop in this state');
    return this.#maildrop;
  }

  /** The messages of the login snapshot (empty before login). */
  get messages(): readonly MessageInfo[] {
    return this.#messages;
  }

  /** Enters TRANSACTION with an opened maildrop. */
  beginTransaction(user: MailUser, maildrop: Maildrop): void {
    this.user = user;
    this.#maildrop = maildrop;
    this.#messages = maildrop.messages;
    this.pendingUser = undefined;
    this.state = 'TRANSACTION';
    if (canLoseMaildrop(maildrop)) this.#watchLoss(maildrop.lost);
  }

  /**
   * A maildrop whose lock is lost (another node may hold it now) must not be changed: the session
   * ends without UPDATE (the store's `confirm()` refuses a QUIT that comes first anyway).
   */
  #watchLoss(lost: AbortSignal): void {
    const onLost = (): void => {
      this.log.warn({ user: this.user?.name }, 'maildrop lock lost: session ended without UPDATE');
      this.channel.end(this.say('lockLost'));
    };
    if (lost.aborted) {
      onLost();
      return;
    }
    lost.addEventListener('abort', onLost, { once: true });
    this.#unwatchLoss = () => {
      lost.removeEventListener('abort', onLost);
    };
  }

  /** Releases the maildrop, exactly once. */
  async releaseMaildrop(): Promise<void> {
    const drop = this.#maildrop;
    if (drop === undefined) return;
    this.#maildrop = undefined;
    this.#unwatchLoss?.();
    try {
      await this.beforeRelease?.();
    } finally {
      await drop.close();
    }
  }

  /** Messages not marked deleted, with their numbers. */
  *liveMessages(): Generator<[msgNo: number, info: MessageInfo]> {
    const messages = this.#messages;
    for (let i = 0; i < messages.length; i++) {
      const msgNo = i + 1;
      if (!this.deleted.has(msgNo)) yield [msgNo, messages[i] as MessageInfo];
    }
  }

  /** Count and total size of the messages not marked deleted. */
  totals(): { count: number; bytes: number } {
    let count = 0;
    let bytes = 0;
    for (const [, info] of this.liveMessages()) {
      count += 1;
      bytes += info.size;
    }
    return { count, bytes };
  }

  /** The message numbered `msgNo` in the login snapshot, unless out of range or marked deleted. */
  liveMessage(msgNo: number): MessageInfo {
    const info = this.#messages[msgNo - 1];
    if (msgNo < 1 || info === undefined) throw textError('noSuchMessage', [this.#messages.length]);
    if (this.deleted.has(msgNo)) throw textError('alreadyDeleted', [msgNo]);
    return info;
  }
}

/** A message's content from the session's maildrop, in the configured chunk size (RETR, TOP). */
export function readMessage(session: Session, uid: string): Promise<MessageContent> {
  return session.maildrop.read(uid, {
    signal: session.signal,
    chunkBytes: session.engine.limits.transferChunkBytes,
  });
}
