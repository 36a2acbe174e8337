import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { asError, RespCode } from '../errors.js';
import { canApop } from '../auth/types.js';
import { apopTimestamp as makeApopTimestamp } from '../auth/digests.js';
import { dispatch } from './dispatch.js';
import { LineReader, OVERLONG, type ReadLine } from './line-reader.js';
import { StrayProxyHeaderError } from './proxy-header-reader.js';
import { startsWithProxyHeader, type ProxyEndpoint } from './proxy-protocol.js';
import { ClientStalledError, ConnectionGoneError, ReplyWriter } from './reply.js';
import {
  Session,
  type CloseReason,
  type ConnectionInfo,
  type EngineContext,
  type SessionSummary,
} from './session.js';

export interface ClosedSessionInfo extends ConnectionInfo {
  readonly user: string | undefined;
  /** Why it closed: QUIT, kicked, a timeout, the server's shutdown, an error, or the client left. */
  readonly reason: CloseReason;
  readonly durationMs: number;
  readonly summary: SessionSummary;
}

/** How a socket reaches a connection: see the {@link Pop3Connection} constructor. */
export type ConnectionKind = 'plain' | 'tls' | 'handshake';

let connectionCounter = 0;

/**
 * One client socket: the greeting, the read loop, the timers and the clean-up. It pulls the next
 * command line only after the previous reply has been handed to the socket, so pipelined commands
 * run strictly in order and wait in the stream (TCP backpressure holds the rest). No command logic
 * lives here.
 */
export class Pop3Connection {
  readonly info: ConnectionInfo;
  readonly session: Session;
  /** The plain socket, then the TLS socket after STLS. */
  #socket: Socket;
  #reader: LineReader | undefined;
  #lines: AsyncGenerator<ReadLine> | undefined;
  /** Set by STLS: the read loop ends and starts again on this socket once its handshake is done. */
  #upgrade: TLSSocket | undefined;
  readonly #engine: EngineContext;
  readonly #abort = new AbortController();
  readonly #startedAt = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #isBusy = false;
  #shutdownMessage: string | undefined;
  /** A TLS handshake is under way: nothing can be said to the client yet. */
  #isHandshaking = false;
  /** Implicit TLS (POP3S): `socket` is the raw TCP socket; the handshake comes before the greeting. */
  readonly #handshakeFirst: boolean;

  /**
   * `kind`: a plain socket, one whose TLS handshake is done, or a raw socket on the implicit-TLS
   * port whose handshake comes before the greeting. `client`: the address and port a PROXY header
   * gave, when the socket's peer is a load balancer.
   */
  constructor(
    socket: Socket,
    engine: EngineContext,
    hostname: string,
    kind: ConnectionKind = 'plain',
    client?: ProxyEndpoint,
  ) {
    this.#socket = socket;
    this.#engine = engine;
    this.#handshakeFirst = kind === 'handshake';
    connectionCounter += 1;
    const id = `${process.pid.toString(36)}-${connectionCounter.toString(36)}-${randomBytes(3).toString('hex')}`;
    this.info = {
      id,
      remoteAddress: client?.address ?? socket.remoteAddress ?? 'unknown',
      remotePort: client?.port ?? socket.remotePort ?? 0,
      isTls: kind !== 'plain',
    };
    const apopTimestamp = canApop(engine.authenticator) ? makeApopTimestamp(hostname) : undefined;
    this.session = new Session({
      info: this.info,
      engine,
      reply: new ReplyWriter(socket, engine.limits.writeStallTimeoutMs, (bytes) => {
        engine.stats.bytesOut += bytes;
        this.session.bytesOut += bytes;
      }),
      signal: this.#abort.signal,
      log: engine.logger.child({ cid: id }),
      apopTimestamp,
    });
    this.session.channel = {
      readLine: (maxBytes) => this.#readContinuation(maxBytes),
      startTls: (reply) => {
        this.#startTls(reply);
      },
      end: (message) => {
        this.shutdown(message, 'error');
      },
    };
  }

  /** Runs the session to its end. Never rejects. */
  async run(): Promise<ClosedSessionInfo> {
    const session = this.session;
    this.#watch(this.#socket);
    this.#socket.setNoDelay(true);
    try {
      if (this.#handshakeFirst) this.#upgrade = this.#serverTls(this.#socket);
      if (!this.#handshakeFirst || (await this.#handshake())) {
        const stamp = session.apopTimestamp === undefined ? '' : ` ${session.apopTimestamp}`;
        await session.reply.ok(session.say('greeting', stamp));
        while (await this.#serve()) {
          if (!(await this.#handshake())) break;
        }
      }
    } catch (error) {
      // A client that stopped reading is worth an info line; a plain disconnect is not.
      if (error instanceof ClientStalledError) {
        session.closeReason ??= 'timeout';
        session.log.info({ state: session.state }, 'client stopped reading');
      } else if (error instanceof StrayProxyHeaderError) {
        await this.#refuseStrayHeader();
      } else if (!(error instanceof ConnectionGoneError)) {
        session.log.debug({ err: asError(error) }, 'connection ended');
      }
    } finally {
      this.#clearTimer();
      this.#close();
    }
    return this.#finish();
  }

  /**
   * The command loop on the current socket. Resolves to true when STLS asked for a handshake (the
   * loop must start again on the TLS socket), false when the session is over.
   */
  async #serve(): Promise<boolean> {
    const session = this.session;
    const reader = new LineReader(this.#countedInput(this.#socket), this.#engine.limits.maxCommandBytes);
    const lines = reader.lines();
    this.#reader = reader;
    this.#lines = lines;
    try {
      this.#armTimer();
      for (;;) {
        const next = await lines.next();
        if (next.done === true) return false;
        this.#clearTimer();
        this.#isBusy = true;
        // More commands already here: their replies may leave together with this one. Only in
        // TRANSACTION, where each command answers from the snapshot or one message; a login may
        // wait on purpose (failure delays), and replies before it must not wait with it.
        if (session.state === 'TRANSACTION' && reader.hasBufferedLine()) session.reply.hold();
        await dispatch(session, next.value === OVERLONG ? undefined : next.value);
        if (session.reply.isHeld && !reader.hasBufferedLine()) session.reply.release();
        this.#isBusy = false;
        if (session.isEnding || this.#abort.signal.aborted) return false;
        if (this.#upgrade !== undefined) return true;
        if (this.#shutdownMessage !== undefined) {
          await this.#sayGoodbye(this.#shutdownMessage);
          return false;
        }
        // A pipelined command already waiting is taken at once: no timer to set and clear for it.
        if (!reader.hasBufferedLine()) this.#armTimer();
      }
    } finally {
      session.reply.release();
      // Whatever the reader still held (bytes sent after STLS, say) is dropped with it.
      this.#lines = undefined;
      await lines.return(undefined);
    }
  }

  /** A SASL continuation line, read from the same stream as commands, with its own length limit. */
  async #readContinuation(maxBytes: number): Promise<Buffer | undefined> {
    const reader = this.#reader;
    const lines = this.#lines;
    if (reader === undefined || lines === undefined) throw new ConnectionGoneError('no reader');
    const previous = reader.maxLineBytes;
    reader.maxLineBytes = maxBytes;
    this.#armTimer();
    try {
      let next: IteratorResult<ReadLine>;
      try {
        next = await lines.next();
      } catch (error) {
        // A reset in the middle of an exchange: the client is gone, nothing went wrong here.
        throw new ConnectionGoneError(`connection lost: ${String(error)}`);
      }
      if (next.done === true) throw new ConnectionGoneError('connection closed');
      return next.value === OVERLONG ? undefined : next.value;
    } finally {
      this.#clearTimer();
      reader.maxLineBytes = previous;
    }
  }

  /**
   * STLS, all in one synchronous step so that no byte can arrive in between: drop what the client
   * sent after the command, write the reply, and wrap the socket for the handshake.
   */
  #startTls(reply: string): void {
    const tls = this.#engine.tls;
    if (tls === undefined) throw new Error('no TLS configured');
    const plain = this.#socket;
    while (plain.read() !== null) {
      // Bytes read from the network but not yet consumed: sent before our reply, so not TLS.
    }
    this.session.reply.writeNow(reply);
    this.#upgrade = this.#serverTls(plain);
  }

  /** The server side of a TLS handshake on `plain`, with the current certificates. */
  #serverTls(plain: Socket): TLSSocket {
    const tls = this.#engine.tls;
    if (tls === undefined) throw new Error('no TLS configured');
    return new TLSSocket(plain, { isServer: true, ...tls.serverOptions() });
  }

  /**
   * Waits for the handshake, within what is left of the login time (for STLS, at least a second);
   * true when it succeeded. On failure, a timeout or a client that goes away, the socket is destroyed.
   */
  async #handshake(): Promise<boolean> {
    const secure = this.#upgrade;
    if (secure === undefined) return false;
    this.#upgrade = undefined;
    this.#socket = secure;
    this.session.reply.retarget(secure);
    this.#watch(secure);
    const { limits } = this.#engine;
    const left = limits.loginTimeoutMs - (Date.now() - this.#startedAt);
    const ms = Math.max(left, this.#handshakeFirst ? 0 : 1000);
    let failure = 'timeout';
    this.#isHandshaking = true;
    const isSecure = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        done(false);
      }, ms);
      const done = (ok: boolean, reason?: string): void => {
        if (reason !== undefined) failure = reason;
        this.#isHandshaking = false;
        clearTimeout(timer);
        secure.off('secure', onSecure);
        secure.off('error', onFail);
        secure.off('close', onFail);
        secure.off('end', onFail);
        resolve(ok);
      };
      const onSecure = (): void => {
        done(true);
      };
      const onFail = (error?: unknown): void => {
        done(false, error instanceof Error ? error.message : 'connection closed');
      };
      secure.once('secure', onSecure);
      secure.once('error', onFail);
      secure.once('close', onFail);
      // A client that half-closes instead of starting the handshake will never finish it.
      secure.once('end', onFail);
    });
    if (!isSecure) {
      const message = this.#handshakeFirst ? 'TLS handshake failed' : 'TLS handshake failed after STLS';
      this.session.closeReason ??= failure === 'timeout' ? 'timeout' : 'error';
      this.session.log.info({ reason: failure }, message);
      secure.destroy();
      return false;
    }
    this.session.enterTls();
    this.session.log.info({ protocol: secure.getProtocol(), cipher: secure.getCipher().name }, 'TLS started');
    return true;
  }

  /** Error and close handling for a socket (the plain one, then the TLS one). */
  #watch(socket: Socket): void {
    socket.on('error', (error) => {
      this.session.log.debug({ err: error }, 'socket error');
    });
    socket.once('close', () => {
      this.#abort.abort();
    });
  }

  /**
   * The socket's chunks, counted as they arrive. Leaving the loop does not destroy the socket. A
   * first chunk like a PROXY header (from a balancer not trusted, or a second one behind a trusted
   * one's) ends the session before any line is read: the v2 signature holds `QUIT\n`.
   */
  async *#countedInput(socket: Socket): AsyncGenerator<Buffer> {
    let isFirst = this.session.bytesIn === 0 && !this.session.isTls;
    for await (const chunk of socket.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      if (isFirst && startsWithProxyHeader(chunk)) throw new StrayProxyHeaderError();
      isFirst = false;
      this.#engine.stats.bytesIn += chunk.length;
      this.session.bytesIn += chunk.length;
      yield chunk;
    }
  }

  /**
   * Ends the session without UPDATE: at once when it waits for a command, else after the command
   * that is running. The client is told why.
   */
  shutdown(message: string, reason: 'shutdown' | 'kicked' | 'error' = 'shutdown'): void {
    if (this.#shutdownMessage !== undefined) return;
    this.#shutdownMessage = message;
    this.session.closeReason ??= reason;
    // Before the handshake ends there is no channel to say why: the connection is just closed.
    if (this.#isHandshaking) {
      this.#socket.destroy();
      return;
    }
    if (!this.#isBusy)
      void this.#sayGoodbye(message).finally(() => {
        this.#close();
      });
  }

  /** Drops the connection at once (the end of a shutdown's grace period). */
  destroy(): void {
    this.session.closeReason ??= 'shutdown';
    this.#socket.destroy();
  }

  async #refuseStrayHeader(): Promise<void> {
    this.session.closeReason ??= 'error';
    this.session.log.warn({ remote: this.info.remoteAddress }, 'PROXY protocol header not expected: refused');
    await this.session.reply.err(this.session.say('proxyHeaderNotExpected')).catch(() => {});
  }

  async #sayGoodbye(message: string): Promise<void> {
    try {
      await this.session.reply.err(this.session.ending(message), RespCode.sysTemp);
    } catch {
      // The client is gone already.
    }
  }

  #armTimer(): void {
    const { limits } = this.#engine;
    const isLoggedIn = this.session.state !== 'AUTHORIZATION';
    const ms = isLoggedIn ? limits.idleTimeoutMs : limits.loginTimeoutMs - (Date.now() - this.#startedAt);
    const message = this.session.say(isLoggedIn ? 'idleTooLong' : 'tooSlowToLogIn');
    this.#timer = setTimeout(
      () => {
        this.session.closeReason ??= 'timeout';
        this.session.log.info({ state: this.session.state }, 'timeout');
        void this.#sayGoodbye(message).finally(() => {
          this.#close();
        });
      },
      Math.max(ms, 0),
    );
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Half-closes after flushing what is queued; destroys if the client does not read it in time. */
  #close(): void {
    const socket = this.#socket;
    if (socket.destroyed) return;
    socket.end();
    const timer = setTimeout(() => socket.destroy(), this.#engine.limits.writeStallTimeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
    });
    socket.once('finish', () => socket.destroy());
  }

  async #finish(): Promise<ClosedSessionInfo> {
    const session = this.session;
    if (session.user !== undefined) {
      const { summary } = session;
      const all = session.messages;
      summary.remainingMessages = all.length - summary.deletedMessages;
      summary.remainingBytes = all.reduce((sum, m) => sum + m.size, 0) - summary.deletedBytes;
      this.#engine.stats.sessionsAuthenticated -= 1;
      try {
        await session.releaseMaildrop();
      } catch (error) {
        session.log.error({ err: asError(error) }, 'releasing the maildrop failed');
      }
    }
    return {
      // The session's info, not the one from connect time: it says whether STLS happened.
      ...session.info,
      user: session.user?.name,
      reason: session.closeReason ?? 'client',
      durationMs: Date.now() - this.#startedAt,
      summary: session.summary,
    };
  }
}
