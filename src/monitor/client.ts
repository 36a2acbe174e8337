import { connect } from 'node:net';
import { ResponseDecoder } from './protocol/decode.js';
import { encodeRequest } from './protocol/encode.js';
import {
  TOKEN_BYTES,
  type ConfigTarget,
  type GetTarget,
  type MonitorRequest,
  type MonitorResponse,
  type Status,
} from './protocol/messages.js';

/** Where the monitor listens. */
export interface MonitorAddress {
  readonly host: string;
  readonly port: number;
  /** Gives up after this long (default 10 s). */
  readonly timeoutMs?: number;
  /** The local address to connect from (default: the system's choice). */
  readonly localAddress?: string;
}

/** Where the monitor listens, and whose token to send. */
export interface MonitorClientOptions extends MonitorAddress {
  /** An admin's token: 16 characters. */
  readonly token: string;
}

/** The monitor answered with a status other than OK (`badData`: it refused the request's data). */
export class MonitorError extends Error {
  override name = 'MonitorError';
  readonly status: Exclude<Status, 'ok'>;
  constructor(status: Exclude<Status, 'ok'>) {
    super(`the monitor answered ${status}`);
    this.status = status;
  }
}

/**
 * A client of Poplar's monitor protocol (docs/monitor-protocol.md), the one `poplarctl` uses: one
 * request per connection. Resolves to the answer; rejects with a {@link MonitorError} when the
 * monitor refuses, and with the socket's error when it cannot be reached.
 */
export class MonitorClient {
  readonly #options: MonitorClientOptions;
  readonly #token: Buffer;

  constructor(options: MonitorClientOptions) {
    this.#options = options;
    this.#token = tokenBytes(options.token);
  }

  /** A counter: `historicConnections`, `transferredBytes64`, `loginsFailed`, ... (not a JSON target). */
  async counter(target: Exclude<GetTarget, 'snapshot' | 'users' | 'admins'>): Promise<bigint> {
    return counterValue(await this.#send({ type: 'get', target, data: Buffer.alloc(0) }));
  }

  /** The server's state as one JSON document (sessions, limits, counters). */
  async snapshot(): Promise<unknown> {
    const data = await this.#send({ type: 'get', target: 'snapshot', data: Buffer.alloc(0) });
    return JSON.parse(data.toString('utf8')) as unknown;
  }

  /** A change: the mail root, a user or admin added or removed, a user's sessions ended, ... */
  async config(target: ConfigTarget, data: string | Buffer): Promise<void> {
    await this.#send({ type: 'config', target, data: typeof data === 'string' ? Buffer.from(data) : data });
  }

  async #send(request: Omit<MonitorRequest, 'token'>): Promise<Buffer> {
    const response = await sendMonitorRequest(this.#options, {
      ...request,
      token: this.#token,
    } as MonitorRequest);
    if (response.status !== 'ok') throw new MonitorError(response.status);
    return response.data;
  }
}

/** A GET counter's value: a uint32 (the C project's targets) or a uint64 (Poplar's). */
export function counterValue(data: Buffer): bigint {
  return data.length === 8 ? data.readBigUInt64BE() : BigInt(data.readUInt32BE());
}

/** The token as the 16 bytes the protocol carries. */
export function tokenBytes(token: string): Buffer {
  const bytes = Buffer.from(token, 'latin1');
  if (bytes.length !== TOKEN_BYTES || token.length !== TOKEN_BYTES) {
    throw new RangeError(`a token is exactly ${TOKEN_BYTES} characters`);
  }
  return bytes;
}

/** Sends one request and resolves to the response (one connection per request, as version 1 has it). */
export function sendMonitorRequest(
  options: MonitorAddress,
  request: MonitorRequest,
): Promise<MonitorResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: options.host,
      port: options.port,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    const decoder = new ResponseDecoder();
    let isSettled = false;
    const settle = (error: Error | undefined, response?: MonitorResponse): void => {
      if (isSettled) return;
      isSettled = true;
      socket.destroy();
      if (response !== undefined) resolve(response);
      else reject(error ?? new Error('no response'));
    };
    socket.setTimeout(options.timeoutMs ?? 10_000, () => {
      settle(new Error('the server did not answer in time'));
    });
    socket.on('connect', () => {
      socket.write(encodeRequest(request));
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        const result = decoder.push(chunk);
        if (result.done) settle(undefined, result.message);
      } catch (error) {
        settle(error as Error);
      }
    });
    socket.on('end', () => {
      settle(new Error('the server closed the connection without a complete response'));
    });
    socket.on('error', (error) => {
      settle(error);
    });
  });
}
