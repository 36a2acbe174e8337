import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from '../log.js';
import { addressKey } from '../pop3/throttle.js';
import { handleRequest, type MonitorBackends } from './handlers.js';
import { RequestDecoder } from './protocol/decode.js';
import { encodeResponse } from './protocol/encode.js';
import {
  FrameError,
  REQUEST_HEADER_BYTES,
  type MonitorResponse,
  type RequestType,
  type Status,
} from './protocol/messages.js';
import { asError } from '../errors.js';
import {
  DEFAULT_TOKEN_THROTTLE,
  TokenThrottle,
  type TokenLogLine,
  type TokenThrottleOptions,
} from './token-throttle.js';

export interface MonitorLimits extends TokenThrottleOptions {
  /** Time allowed for a whole request to arrive. */
  readonly requestDeadlineMs: number;
  /** Time allowed for the 21-byte header (clients send it in one write): an idle connection goes soon. */
  readonly headerDeadlineMs: number;
  /**
   * Monitor connections open at once. When all are taken, the address holding the most (an IPv6
   * client by its /64) gives up its oldest connection still waiting for its request.
   */
  readonly maxConcurrentRequests: number;
  /** Largest DLEN accepted (a path or a user and password fit easily). */
  readonly maxDataBytes: number;
}

export const DEFAULT_MONITOR_LIMITS: MonitorLimits = {
  requestDeadlineMs: 5000,
  headerDeadlineMs: 1000,
  maxConcurrentRequests: 32,
  maxDataBytes: 8192,
  ...DEFAULT_TOKEN_THROTTLE,
};

/** A monitor connection: its address key, and whether it still waits for its request. */
interface Slot {
  readonly key: string;
  isWaiting: boolean;
  /** Closes it without a response, to make room for a newer one. */
  drop(): void;
}

/** One line for many wrong tokens of an address (see {@link TokenThrottle}). */
function logWrongTokens(logger: Logger, line: TokenLogLine | undefined): void {
  if (line !== undefined) logger.warn(line, 'monitor request with a wrong token');
}

/** Requests answered, by type and status (for metrics). */
export type MonitorCounts = Map<`${RequestType | 'none'}:${Status | 'closed'}`, number>;

/**
 * The monitor listener: one request per connection, one response in one write, then close. It only
 * moves bytes; the codec (`protocol/`) and the handlers give them meaning. A slow, partial, oversized
 * or garbage request gets its status byte (or, before a whole header, a closed connection) within
 * the deadline, and never touches POP3 service.
 *
 * Places are limited. When a new connection finds none, the oldest connection still waiting for
 * its request, of the address holding the most places, is closed to make room: a client holding
 * idle connections cannot shut out an operator whose request comes in one write. Past a few wrong
 * tokens, an address's requests wait for their turn (see {@link TokenThrottle}); a waiting one can
 * make room too.
 */
export class MonitorServer {
  readonly counts: MonitorCounts = new Map();
  readonly #backends: MonitorBackends;
  readonly #limits: MonitorLimits;
  readonly #listeners: Server[] = [];
  /** Open connections, oldest first. */
  readonly #slots = new Map<Socket, Slot>();
  readonly #throttle: TokenThrottle;
  /** Requests waiting for another of their address to be checked, by address, oldest first. */
  readonly #waiters = new Map<string, (() => void)[]>();

  constructor(backends: MonitorBackends, limits: Partial<MonitorLimits> = {}) {
    this.#backends = backends;
    this.#limits = { ...DEFAULT_MONITOR_LIMITS, ...limits };
    this.#throttle = new TokenThrottle(this.#limits);
  }

  async listen(options: { readonly host: string; readonly port: number }): Promise<AddressInfo> {
    const listener = createNetServer((socket) => {
      this.handleConnection(socket);
    });
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen({ host: options.host, port: options.port, ipv6Only: true }, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    listener.on('error', (error) => {
      this.#backends.logger.error({ err: error }, 'monitor listener error');
    });
    this.#listeners.push(listener);
    const address = listener.address() as AddressInfo;
    this.#backends.logger.info({ address: address.address, port: address.port }, 'monitor listening');
    return address;
  }

  addresses(): AddressInfo[] {
    return this.#listeners.map((l) => l.address() as AddressInfo);
  }

  handleConnection(socket: Socket): void {
    socket.on('error', () => {});
    const key = addressKey(socket.remoteAddress ?? '');
    if (!this.#makeRoom(key)) {
      this.#count('none', 'closed');
      socket.destroy();
      return;
    }
    const slot: Slot = {
      key,
      isWaiting: true,
      drop: () => {
        this.#backends.logger.debug(
          { remote: socket.remoteAddress },
          'monitor connection closed for a newer one',
        );
        finish('none', undefined);
      },
    };
    this.#slots.set(socket, slot);
    const decoder = new RequestDecoder(this.#limits.maxDataBytes);
    let received = 0;
    let isDone = false;
    /** A request of an address past its wrong tokens waits for its turn: then, and on which timer. */
    let isHeld = false;
    let heldTimer: NodeJS.Timeout | undefined;
    const finish = (type: RequestType | 'none', response: MonitorResponse | undefined): void => {
      if (isDone) return;
      isDone = true;
      slot.isWaiting = false;
      clearTimeout(deadline);
      clearTimeout(headerDeadline);
      socket.off('data', onData);
      this.#count(type, response?.status ?? 'closed');
      if (response === undefined) {
        socket.destroy();
        return;
      }
      socket.end(encodeResponse(response)); // one write: the original client reads one chunk
      // Done once the response is out: a client that never reads or never closes its side must
      // not keep its place (nor one that reconnects before its FIN is read).
      socket.once('finish', () => socket.destroy());
      const linger = setTimeout(() => socket.destroy(), this.#limits.requestDeadlineMs);
      socket.once('close', () => {
        clearTimeout(linger);
      });
    };
    const deadline = setTimeout(() => {
      this.#backends.logger.info({ remote: socket.remoteAddress, received }, 'monitor request too slow');
      // Without a whole header there is nothing to answer; with one, the data never came.
      finish(
        'none',
        received < REQUEST_HEADER_BYTES ? undefined : { status: 'badData', data: Buffer.alloc(0) },
      );
    }, this.#limits.requestDeadlineMs);
    const headerDeadline = setTimeout(
      () => {
        if (received >= REQUEST_HEADER_BYTES) return;
        this.#backends.logger.info({ remote: socket.remoteAddress, received }, 'monitor request too slow');
        finish('none', undefined);
      },
      Math.min(this.#limits.headerDeadlineMs, this.#limits.requestDeadlineMs),
    );
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      let result;
      try {
        result = decoder.push(chunk);
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
        this.#backends.logger.info({ remote: socket.remoteAddress, code: error.code }, 'bad monitor request');
        finish('none', { status: error.status, data: Buffer.alloc(0) });
        return;
      }
      if (!result.done) return;
      socket.pause();
      slot.isWaiting = false;
      clearTimeout(deadline);
      clearTimeout(headerDeadline);
      const request = result.message;
      // Every line the request logs (the audit of a change included) names the client's address.
      const logger = this.#backends.logger.child({ remote: socket.remoteAddress });
      const attempt = (): void => {
        if (socket.destroyed) {
          this.#wake(key); // its turn passes to the next request of the address
          return;
        }
        const admission = this.#throttle.admit(key);
        if (admission.kind !== 'check') {
          // Too many wrong tokens from this address: the request waits, its token unchecked, and
          // can make room for a newer connection meanwhile.
          if (!isHeld) {
            isHeld = true;
            logger.debug({}, 'monitor request held');
            logWrongTokens(logger, this.#throttle.hold(key));
          }
          slot.isWaiting = true;
          if (admission.kind === 'wait') heldTimer = setTimeout(attempt, admission.ms);
          else this.#waiters.set(key, [...(this.#waiters.get(key) ?? []), attempt]);
          return;
        }
        slot.isWaiting = false;
        handleRequest({ ...this.#backends, logger }, request)
          .catch((error: unknown): MonitorResponse => {
            this.#backends.logger.error({ err: asError(error) }, 'monitor request failed');
            return { status: 'serverError', data: Buffer.alloc(0) };
          })
          .then(
            (response) => {
              admission.done();
              if (response.status === 'authFailed') logWrongTokens(logger, this.#throttle.fail(key));
              finish(request.type, response);
              this.#wake(key);
            },
            () => undefined,
          );
      };
      attempt();
    };
    socket.on('data', onData);
    socket.once('close', () => {
      clearTimeout(deadline);
      clearTimeout(headerDeadline);
      clearTimeout(heldTimer);
      // A request gone while it waited for its turn: the next of its address may be waiting on it.
      if (isHeld) this.#wake(key);
      this.#slots.delete(socket);
    });
  }

  /** Lets the oldest request of `key` that waits for its turn try again. */
  #wake(key: string): void {
    const [next, ...rest] = this.#waiters.get(key) ?? [];
    if (rest.length > 0) this.#waiters.set(key, rest);
    else this.#waiters.delete(key);
    next?.();
  }

  /**
   * Whether a new connection from `key` may have a place. When none is free, the address holding
   * the most places (the newcomer counted) gives up its oldest connection still waiting for its
   * request: one address cannot keep the others out, however many connections it opens, and a
   * burst of requests from one address is not cut while there is room. False when every place is
   * taken by a request being answered.
   */
  #makeRoom(key: string): boolean {
    if (this.#slots.size < this.#limits.maxConcurrentRequests) return true;
    const held = new Map<string, number>([[key, 1]]);
    for (const slot of this.#slots.values()) held.set(slot.key, (held.get(slot.key) ?? 0) + 1);
    let victim: [Socket, Slot] | undefined;
    let victimHeld = 0;
    for (const [socket, slot] of this.#slots) {
      const count = held.get(slot.key) ?? 0;
      // Oldest first: among addresses holding as many, the oldest waiting connection goes.
      if (slot.isWaiting && count > victimHeld) {
        victim = [socket, slot];
        victimHeld = count;
      }
    }
    if (victim === undefined) return false;
    this.#slots.delete(victim[0]);
    victim[1].drop();
    return true;
  }

  #count(type: RequestType | 'none', status: Status | 'closed'): void {
    const key = `${type}:${status}` as const;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  async close(): Promise<void> {
    const closed = this.#listeners.map(
      (l) =>
        new Promise<void>((resolve) =>
          l.close(() => {
            resolve();
          }),
        ),
    );
    this.#listeners.length = 0;
    for (const socket of this.#slots.keys()) socket.destroy();
    await Promise.all(closed);
  }
}
