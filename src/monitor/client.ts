import { connect } from 'node:net';
import { ResponseDecoder } from './protocol/decode.js';
import { encodeRequest } from './protocol/encode.js';
import { TOKEN_BYTES, type MonitorRequest, type MonitorResponse } from './protocol/messages.js';

export interface MonitorClientOptions {
  readonly host: string;
  readonly port: number;
  /** Gives up after this long. */
  readonly timeoutMs?: number;
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
  options: MonitorClientOptions,
  request: MonitorRequest,
): Promise<MonitorResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: options.host, port: options.port });
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
