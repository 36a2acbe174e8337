import {
  ConfigTarget,
  FrameError,
  GetTarget,
  nameOf,
  PROTOCOL_VERSION,
  REQUEST_HEADER_BYTES,
  RequestType,
  RESPONSE_HEADER_BYTES,
  Status,
  TOKEN_BYTES,
  type MonitorRequest,
  type MonitorResponse,
} from './messages.js';

export type DecodeResult<T> = { readonly done: false } | { readonly done: true; readonly message: T };

const NOT_YET = { done: false } as const;

/**
 * Reassembles one request from chunks, however they are split. Framing errors are thrown as
 * {@link FrameError} as soon as the byte that shows them arrives (a bad version at byte 0, say), so
 * the server can answer without waiting for the rest.
 */
export class RequestDecoder {
  readonly #maxDataBytes: number;
  #buffer: Buffer = Buffer.alloc(0);

  constructor(maxDataBytes = 0xffff) {
    this.#maxDataBytes = maxDataBytes;
  }

  push(chunk: Buffer): DecodeResult<MonitorRequest> {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const b = this.#buffer;
    if (b.length >= 1 && b[0] !== PROTOCOL_VERSION) {
      throw new FrameError('BAD_VERSION', `unsupported version ${String(b[0])}`);
    }
    const type = b.length > 17 ? nameOf(RequestType, b[17] ?? -1) : undefined;
    if (b.length > 17 && type === undefined)
      throw new FrameError('BAD_TYPE', `invalid type ${String(b[17])}`);
    if (b.length > 18) {
      const byte = b[18] ?? -1;
      const known = type === 'get' ? nameOf(GetTarget, byte) : nameOf(ConfigTarget, byte);
      if (known === undefined) throw new FrameError('BAD_TARGET', `invalid ${String(type)} target ${byte}`);
    }
    if (b.length < REQUEST_HEADER_BYTES) return NOT_YET;
    const dataBytes = b.readUInt16BE(19);
    if (dataBytes > this.#maxDataBytes) throw new FrameError('TOO_LARGE', `DLEN ${dataBytes} is too large`);
    if (b.length < REQUEST_HEADER_BYTES + dataBytes) return NOT_YET;
    const token = Buffer.from(b.subarray(1, 1 + TOKEN_BYTES));
    const data = Buffer.from(b.subarray(REQUEST_HEADER_BYTES, REQUEST_HEADER_BYTES + dataBytes));
    const message: MonitorRequest =
      type === 'get'
        ? { type, token, target: nameOf(GetTarget, b[18] ?? -1) as GetTarget, data }
        : { type: 'config', token, target: nameOf(ConfigTarget, b[18] ?? -1) as ConfigTarget, data };
    return { done: true, message };
  }

  /** Bytes received after the end of the request (version 1 allows none). */
  get hasExtraBytes(): boolean {
    const b = this.#buffer;
    return b.length >= REQUEST_HEADER_BYTES && b.length > REQUEST_HEADER_BYTES + b.readUInt16BE(19);
  }
}

/** Reassembles one response (the client side). An unknown status byte is an error. */
export class ResponseDecoder {
  #buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): DecodeResult<MonitorResponse> {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const b = this.#buffer;
    if (b.length < RESPONSE_HEADER_BYTES) return NOT_YET;
    const status = nameOf(Status, b[0] ?? -1);
    if (status === undefined) throw new Error(`unknown status byte ${String(b[0])}`);
    const dataBytes = b.readUInt16BE(1);
    if (b.length < RESPONSE_HEADER_BYTES + dataBytes) return NOT_YET;
    return {
      done: true,
      message: {
        status,
        data: Buffer.from(b.subarray(RESPONSE_HEADER_BYTES, RESPONSE_HEADER_BYTES + dataBytes)),
      },
    };
  }
}
