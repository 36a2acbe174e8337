import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { RespCode } from '../errors.js';
import { canApop } from '../auth/types.js';
import { dispatch } from './dispatch.js';
import { LineReader, OVERLONG } from './line-reader.js';
import { ConnectionGoneError, ReplyWriter } from './reply.js';
import { Session, type ConnectionInfo, type EngineContext, type SessionSummary } from './session.js';

export interface ClosedSessionInfo extends ConnectionInfo {
  readonly user: string | undefined;
  readonly durationMs: number;
  readonly summary: SessionSummary;
}

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
  readonly #socket: Socket;
  readonly #engine: EngineContext;
  readonly #abort = new AbortController();
  readonly #startedAt = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #isBusy = false;
  #shutdownMessage: string | undefined;

  constructor(socket: Socket, engine: EngineContext, hostname: string, isTls = false) {
    this.#socket = socket;
    this.#engine = engine;
    connectionCounter += 1;
    const id = `${process.pid.toString(36)}-${connectionCounter.toString(36)}-${randomBytes(3).toString('hex')}`;
    this.info = {
      id,
      remoteAddress: socket.remoteAddress ?? 'unknown',
      remotePort: socket.remotePort ?? 0,
      isTls,
    };
    const apopTimestamp = canApop(engine.authenticator)
      ? `<${process.pid}.${connectionCounter}.${randomBytes(8).toString('hex')}@${hostname}>`
      : undefined;
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
  }

  /** Runs the session to its end. Never rejects. */
  async run(): Promise<ClosedSessionInfo> {
    const socket = this.#socket;
    const session = this.session;
    socket.setNoDelay(true);
    socket.on('error', (error) => {
      session.log.debug({ err: error.message }, 'socket error');
    });
    socket.once('close', () => {
      this.#abort.abort();
    });
    try {
      const stamp = session.apopTimestamp === undefined ? '' : ` ${session.apopTimestamp}`;
      await session.reply.ok(`Poplar POP3 server ready${stamp}`);
      const reader = new LineReader(this.#countedInput(), this.#engine.limits.maxCommandBytes);
      this.#armTimer();
      for await (const line of reader.lines()) {
        this.#clearTimer();
        this.#isBusy = true;
        await dispatch(session, line === OVERLONG ? undefined : line);
        this.#isBusy = false;
        if (session.isEnding || this.#abort.signal.aborted) break;
        if (this.#shutdownMessage !== undefined) {
          await this.#sayGoodbye(this.#shutdownMessage);
          break;
        }
        this.#armTimer();
      }
    } catch (error) {
      if (!(error instanceof ConnectionGoneError))
        session.log.debug({ err: String(error) }, 'connection ended');
    } finally {
      this.#clearTimer();
      this.#close();
    }
    return this.#finish();
  }

  /** The socket's chunks, counted as they arrive. Leaving the loop does not destroy the socket. */
  async *#countedInput(): AsyncGenerator<Buffer> {
    for await (const chunk of this.#socket.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      this.#engine.stats.bytesIn += chunk.length;
      this.session.bytesIn += chunk.length;
      yield chunk;
    }
  }

  /**
   * Ends the session without UPDATE: at once when it waits for a command, else after the command
   * that is running. The client is told why.
   */
  shutdown(message: string): void {
    if (this.#shutdownMessage !== undefined) return;
    this.#shutdownMessage = message;
    if (!this.#isBusy)
      void this.#sayGoodbye(message).finally(() => {
        this.#close();
      });
  }

  /** Drops the connection at once. */
  destroy(): void {
    this.#socket.destroy();
  }

  async #sayGoodbye(message: string): Promise<void> {
    try {
      await this.session.reply.err(message, RespCode.sysTemp);
    } catch {
      // The client is gone already.
    }
  }

  #armTimer(): void {
    const { limits } = this.#engine;
    const isLoggedIn = this.session.state !== 'AUTHORIZATION';
    const ms = isLoggedIn ? limits.idleTimeoutMs : limits.loginTimeoutMs - (Date.now() - this.#startedAt);
    const message = isLoggedIn ? 'autologout: idle for too long' : 'too slow to log in';
    this.#timer = setTimeout(
      () => {
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
        session.log.error({ err: String(error) }, 'releasing the maildrop failed');
      }
    }
    return {
      ...this.info,
      user: session.user?.name,
      durationMs: Date.now() - this.#startedAt,
      summary: session.summary,
    };
  }
}
