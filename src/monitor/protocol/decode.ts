import {
  ConfigTarget,
  FrameError,
  GetTarget,
  nameOf,
  PROTOCOL_VERSION,
  REQUEST_HEADER_BYTES,
  RequestType,
  RESPONSE_HEADER_BYTES,
  ResponseFrameError,
  Status,
  TOKEN_BYTES,
  type MonitorRequest,
  type MonitorResponse,
} from './messages.js';

export type DecodeResult<T> = { readonly done: false } | { readonly done: true; readonly message: T };

const NOT_YET = { done: false } as const;
const EMPTY = Buffer.alloc(0);

/**
 * Reassembles one request from chunks, however they are split. Framing errors are thrown as
 * {@link FrameError} as soon as the byte that shows them arrives (a bad version at byte 0, say), so
 * the server can answer without waiting for the rest. It never holds more than the header, DATA up
 * to `maxDataBytes` and the chunk in hand: once the request is complete or refused, later chunks are
 * not kept (only whether any came), and pushing again gives the same message or the same error.
 */
export class RequestDecoder {
  readonly #maxDataBytes: number;
  #buffer: Buffer = EMPTY;
  #outcome: { readonly done: true; readonly message: MonitorRequest } | FrameError | undefined;
  #hasExtraBytes = false;

  constructor(maxDataBytes = 0xffff) {
    this.#maxDataBytes = maxDataBytes;
  }

  push(chunk: Buffer): DecodeResult<MonitorRequest> {
    const outcome = this.#outcome;
    if (outcome instanceof FrameError) throw outcome;
    if (outcome !== undefined) {
      if (chunk.length > 0) this.#hasExtraBytes = true;
      return outcome;
    }
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const b = this.#buffer;
    if (b.length >= 1 && b[0] !== PROTOCOL_VERSION) {
      throw this.#refuse(new FrameError('BAD_VERSION', `unsupported version ${String(b[0])}`));
    }
    const type = b.length > 17 ? nameOf(RequestType, b[17] ?? -1) : undefined;
    if (b.length > 17 && type === undefined)
      throw this.#refuse(new FrameError('BAD_TYPE', `invalid type ${String(b[17])}`));
    if (b.length > 18) {
      const byte = b[18] ?? -1;
      const known = type === 'get' ? nameOf(GetTarget, byte) : nameOf(ConfigTarget, byte);
      if (known === undefined)
        throw this.#refuse(new FrameError('BAD_TARGET', `invalid ${String(type)} target ${byte}`));
    }
    if (b.length < REQUEST_HEADER_BYTES) return NOT_YET;
    const dataBytes = b.readUInt16BE(19);
    if (dataBytes > this.#maxDataBytes)
      throw this.#refuse(new FrameError('TOO_LARGE', `DLEN ${dataBytes} is too large`));
    const frameBytes = REQUEST_HEADER_BYTES + dataBytes;
    if (b.length < frameBytes) return NOT_YET;
    const token = Buffer.from(b.subarray(1, 1 + TOKEN_BYTES));
    const data = Buffer.from(b.subarray(REQUEST_HEADER_BYTES, frameBytes));
    const message: MonitorRequest =
      type === 'get'
        ? { type, token, target: nameOf(GetTarget, b[18] ?? -1) as GetTarget, data }
        : { type: 'config', token, target: nameOf(ConfigTarget, b[18] ?? -1) as ConfigTarget, data };
    this.#hasExtraBytes = b.length > frameBytes;
    this.#buffer = EMPTY;
    this.#outcome = { done: true, message };
    return this.#outcome;
  }

  /** Bytes received after the end of the request (version 1 allows none). */
  get hasExtraBytes(): boolean {
    return this.#hasExtraBytes;
  }

  #refuse(error: FrameError): FrameError {
    this.#buffer = EMPTY;
    this.#outcome = error;
    return error;
  }
}

/**
 * Reassembles one response (the client side). An unknown status byte is a {@link ResponseFrameError}.
 * Like {@link RequestDecoder}, it keeps nothing once the response is complete or refused.
 */
export class ResponseDecoder {
  #buffer: Buffer = EMPTY;
  #outcome: { readonly done: true; readonly message: MonitorResponse } | ResponseFrameError | undefined;

  push(chunk: Buffer): DecodeResult<MonitorResponse> {
    const outcome = this.#outcome;
    if (outcome instanceof ResponseFrameError) throw outcome;
    if (outcome !== undefined) return outcome;
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const b = this.#buffer;
    if (b.length === 0) return NOT_YET;
    const status = nameOf(Status, b[0] ?? -1);
    if (status === undefined) {
      this.#buffer = EMPTY;
      this.#outcome = new ResponseFrameError(b[0] ?? -1);
      throw this.#outcome;
    }
    if (b.length < RESPONSE_HEADER_BYTES) return NOT_YET;
    const dataBytes = b.readUInt16BE(1);
    if (b.length < RESPONSE_HEADER_BYTES + dataBytes) return NOT_YET;
    const data = Buffer.from(b.subarray(RESPONSE_HEADER_BYTES, RESPONSE_HEADER_BYTES + dataBytes));
    this.#buffer = EMPTY;
    this.#outcome = { done: true, message: { status, data } };
    return this.#outcome;
  }
}
