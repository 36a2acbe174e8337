import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
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

export interface MonitorLimits {
  /** Time allowed for a whole request to arrive. */
  readonly requestDeadlineMs: number;
  /** Monitor connections open at once; more are closed at once. */
  readonly maxConcurrentRequests: number;
  /** Largest DLEN accepted (a path or a user and password fit easily). */
  readonly maxDataBytes: number;
}

export const DEFAULT_MONITOR_LIMITS: MonitorLimits = {
  requestDeadlineMs: 5000,
  maxConcurrentRequests: 32,
  maxDataBytes: 8192,
};

/** Requests answered, by type and status (for metrics). */
export type MonitorCounts = Map<`${RequestType | 'none'}:${Status | 'closed'}`, number>;

/**
 * The monitor listener: one request per connection, one response in one write, then close. It only
 * moves bytes; the codec (`protocol/`) and the handlers give them meaning. A slow, partial, oversized
 * or garbage request gets its status byte (or, before a whole header, a closed connection) within
 * the deadline, and never touches POP3 service.
 */
export class MonitorServer {
  readonly counts: MonitorCounts = new Map();
  readonly #backends: MonitorBackends;
  readonly #limits: MonitorLimits;
  readonly #listeners: Server[] = [];
  readonly #sockets = new Set<Socket>();

  constructor(backends: MonitorBackends, limits: Partial<MonitorLimits> = {}) {
    this.#backends = backends;
    this.#limits = { ...DEFAULT_MONITOR_LIMITS, ...limits };
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
    if (this.#sockets.size >= this.#limits.maxConcurrentRequests) {
      this.#count('none', 'closed');
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    const decoder = new RequestDecoder(this.#limits.maxDataBytes);
    let received = 0;
    let isDone = false;
    const finish = (type: RequestType | 'none', response: MonitorResponse | undefined): void => {
      if (isDone) return;
      isDone = true;
      clearTimeout(deadline);
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
      clearTimeout(deadline);
      const request = result.message;
      // Every line the request logs (the audit of a change included) names the client's address.
      const logger = this.#backends.logger.child({ remote: socket.remoteAddress });
      handleRequest({ ...this.#backends, logger }, request)
        .catch((error: unknown): MonitorResponse => {
          this.#backends.logger.error({ err: asError(error) }, 'monitor request failed');
          return { status: 'serverError', data: Buffer.alloc(0) };
        })
        .then(
          (response) => {
            finish(request.type, response);
          },
          () => undefined,
        );
    };
    socket.on('data', onData);
    socket.once('close', () => {
      clearTimeout(deadline);
      this.#sockets.delete(socket);
    });
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
    for (const socket of this.#sockets) socket.destroy();
    await Promise.all(closed);
  }
}
