import {
  ConfigTarget,
  GetTarget,
  MAX_DLEN,
  PROTOCOL_VERSION,
  REQUEST_HEADER_BYTES,
  RequestType,
  RESPONSE_HEADER_BYTES,
  Status,
  TOKEN_BYTES,
  type MonitorRequest,
  type MonitorResponse,
} from './messages.js';

const ZERO = Buffer.from([0x00]);

/** The bytes of a request. A GET without data is sent as the original client does: DLEN 1, one 0x00. */
export function encodeRequest(request: MonitorRequest): Buffer {
  if (request.token.length !== TOKEN_BYTES) throw new RangeError(`token must be ${TOKEN_BYTES} bytes`);
  const data = request.type === 'get' && request.data.length === 0 ? ZERO : request.data;
  if (data.length > MAX_DLEN) throw new RangeError('data too long');
  const out = Buffer.alloc(REQUEST_HEADER_BYTES + data.length);
  out[0] = PROTOCOL_VERSION;
  request.token.copy(out, 1);
  out[17] = RequestType[request.type];
  out[18] = request.type === 'get' ? GetTarget[request.target] : ConfigTarget[request.target];
  out.writeUInt16BE(data.length, 19);
  data.copy(out, REQUEST_HEADER_BYTES);
  return out;
}

/** The bytes of a response: STATUS, DLEN, DATA (one 0x00 byte when there is no data). */
export function encodeResponse(response: MonitorResponse): Buffer {
  const data = response.data.length === 0 ? ZERO : response.data;
  if (data.length > MAX_DLEN) throw new RangeError('data too long');
  const out = Buffer.alloc(RESPONSE_HEADER_BYTES + data.length);
  out[0] = Status[response.status];
  out.writeUInt16BE(data.length, 1);
  data.copy(out, RESPONSE_HEADER_BYTES);
  return out;
}

/** A version-1 counter: uint32, saturated at 2^32-1 rather than wrapped. */
export function uint32(value: number | bigint): Buffer {
  const out = Buffer.alloc(4);
  const n = BigInt(value);
  out.writeUInt32BE(Number(n > 0xffffffffn ? 0xffffffffn : n < 0n ? 0n : n));
  return out;
}

/** One of Poplar's counters: uint64. */
export function uint64(value: number | bigint): Buffer {
  const out = Buffer.alloc(8);
  const n = BigInt(value);
  out.writeBigUInt64BE(n < 0n ? 0n : n);
  return out;
}

/** The DATA of CONFIG targets that take two fields: `a 0x00 b`. */
export function pairData(first: string, second: string): Buffer {
  return Buffer.concat([Buffer.from(first, 'utf8'), ZERO, Buffer.from(second, 'utf8')]);
}
