import { isIPv4, isIPv6, SocketAddress } from 'node:net';

/**
 * The PROXY protocol header (HAProxy's doc/proxy-protocol.txt), versions 1 and 2, as a pure parser:
 * bytes in, a header or a {@link ProxyHeaderError} out. It reads no socket: `proxy-header-reader.ts`
 * feeds it what has arrived so far.
 */

/** One end of the proxied TCP connection. */
export interface ProxyEndpoint {
  readonly address: string;
  readonly port: number;
}

/**
 * A complete header. `proxy`: the addresses inside are the client's and ours as the client saw it.
 * `local` (v2 LOCAL, the balancer's own health check) and `unknown` (v1 UNKNOWN, v2 UNSPEC or a
 * family we do not take, such as AF_UNIX): the spec says to keep the connection's real endpoints.
 */
export type ProxyHeader =
  | {
      readonly version: 1 | 2;
      readonly command: 'proxy';
      readonly source: ProxyEndpoint;
      readonly destination: ProxyEndpoint;
      /** Bytes of the header, which the caller removes from the stream. */
      readonly length: number;
    }
  | { readonly version: 1 | 2; readonly command: 'local' | 'unknown'; readonly length: number };

/** Why a header was refused; each a stable code, as the monitor codec's. */
export const ProxyHeaderErrorCode = {
  /** The first bytes are neither `PROXY ` nor the v2 signature. */
  missing: 'NOT_PROXY',
  /** A v1 line that does not match the grammar (fields, addresses, ports, a lone CR or LF). */
  badV1: 'BAD_V1',
  /** A v1 line with no CRLF in its first 107 bytes. */
  v1TooLong: 'V1_TOO_LONG',
  /** v2: a version other than 2. */
  badVersion: 'BAD_VERSION',
  /** v2: a command other than LOCAL (0) and PROXY (1). */
  badCommand: 'BAD_COMMAND',
  /** v2: an address family above AF_UNIX or a transport above DGRAM. */
  badFamily: 'BAD_FAMILY',
  /** v2: a length beyond {@link MAX_V2_BODY_BYTES}, or too short for its addresses. */
  badLength: 'BAD_LENGTH',
  /** v2: a TLV that runs past the header's end. */
  badTlv: 'BAD_TLV',
} as const;
export type ProxyHeaderErrorCode = (typeof ProxyHeaderErrorCode)[keyof typeof ProxyHeaderErrorCode];

export class ProxyHeaderError extends Error {
  override name = 'ProxyHeaderError';
  constructor(
    readonly code: ProxyHeaderErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Longest v1 line, CRLF included: `PROXY UNKNOWN` with two full IPv6 addresses and ports (spec 2.1). */
export const MAX_V1_BYTES = 107;
/**
 * Longest v2 body (addresses and TLVs) we take. HAProxy's own is far shorter unless it is told to
 * send TLVs; 4 KiB leaves room for a client certificate (PP2_SUBTYPE_SSL_CLIENT_CERT).
 */
export const MAX_V2_BODY_BYTES = 4096;
const V2_FIXED_BYTES = 16;
/** The most bytes any header can take: the reader never holds more than this. */
export const MAX_PROXY_HEADER_BYTES = V2_FIXED_BYTES + MAX_V2_BODY_BYTES;

/** `\r\n\r\n\0\r\nQUIT\n` (spec 2.2). */
export const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const CR = 0x0d;
const LF = 0x0a;

/** Whether `bytes` (at least one) agree with `prefix` as far as both go. */
const agrees = (bytes: Uint8Array, prefix: Uint8Array): boolean => {
  const n = Math.min(bytes.length, prefix.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
};

/**
 * Whether the first bytes of a connection are (the start of) a PROXY header: `PROXY ` or the first
 * five bytes of the v2 signature (`\r\n\r\n\0`, which no POP3 client sends). For refusing a header
 * from an address that is not trusted to send one.
 */
export function startsWithProxyHeader(bytes: Uint8Array): boolean {
  return (
    (bytes.length >= V1_PREFIX.length && agrees(bytes, V1_PREFIX)) ||
    (bytes.length >= 5 && agrees(bytes, V2_SIGNATURE))
  );
}

/**
 * Parses the header at the start of `bytes`: the header, or `undefined` when more bytes are needed
 * (never when `bytes` holds {@link MAX_PROXY_HEADER_BYTES} or more). Throws a
 * {@link ProxyHeaderError} for anything that cannot be a valid header, as soon as the bytes show it;
 * never reads past the header's end.
 */
export function parseProxyHeader(bytes: Uint8Array): ProxyHeader | undefined {
  if (bytes.length === 0) return undefined;
  if (agrees(bytes, V2_SIGNATURE)) {
    return bytes.length < V2_SIGNATURE.length ? undefined : parseV2(bytes);
  }
  if (agrees(bytes, V1_PREFIX)) return bytes.length < V1_PREFIX.length ? undefined : parseV1(bytes);
  throw new ProxyHeaderError(ProxyHeaderErrorCode.missing, 'no PROXY protocol header');
}

function parseV1(bytes: Uint8Array): ProxyHeader | undefined {
  const end = Math.min(bytes.length, MAX_V1_BYTES);
  let lf = -1;
  for (let i = 0; i < end; i++) {
    if (bytes[i] === LF) {
      lf = i;
      break;
    }
  }
  if (lf === -1) {
    if (bytes.length >= MAX_V1_BYTES)
      throw new ProxyHeaderError(ProxyHeaderErrorCode.v1TooLong, 'PROXY v1 line longer than 107 bytes');
    return undefined;
  }
  if (lf === 0 || bytes[lf - 1] !== CR) throw bad('PROXY v1 line not ended by CRLF');
  const length = lf + 1;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, lf - 1).toString('latin1');
  if (text.includes('\r')) throw bad('PROXY v1 line with a lone CR');
  const fields = text.split(' ');
  const family = fields[1];
  // "For UNKNOWN, the rest of the line before the CRLF may be omitted by the sender, and the
  // receiver must ignore anything presented before the CRLF is found."
  if (family === 'UNKNOWN') return { version: 1, command: 'unknown', length };
  if (family !== 'TCP4' && family !== 'TCP6') throw bad('PROXY v1 family is not TCP4, TCP6 or UNKNOWN');
  if (fields.length !== 6) throw bad('PROXY v1 line does not have six fields');
  const [, , source = '', destination = '', sourcePort = '', destinationPort = ''] = fields;
  const isAddress = family === 'TCP4' ? isCanonicalIPv4 : isV1IPv6;
  if (!isAddress(source) || !isAddress(destination)) throw bad(`PROXY v1 address is not ${family}`);
  const canonical = family === 'TCP4' ? (a: string): string => a : canonicalIPv6;
  return {
    version: 1,
    command: 'proxy',
    source: { address: canonical(source), port: v1Port(sourcePort) },
    destination: { address: canonical(destination), port: v1Port(destinationPort) },
    length,
  };
}

const bad = (message: string): ProxyHeaderError => new ProxyHeaderError(ProxyHeaderErrorCode.badV1, message);

/** Four decimal numbers 0..255 without leading zeros (spec 2.1: no octal confusion). */
function isCanonicalIPv4(text: string): boolean {
  return /^(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}$/.test(text) && isIPv4(text);
}

/** Hexadecimal groups and colons (one `::` at most, as `isIPv6` checks); no zone, nothing else. */
function isV1IPv6(text: string): boolean {
  return /^[0-9A-Fa-f:.]{2,45}$/.test(text) && isIPv6(text);
}

function v1Port(text: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) throw bad('PROXY v1 port is not a decimal number');
  const port = Number(text);
  if (port > 65_535) throw bad('PROXY v1 port above 65535');
  return port;
}

const FAMILY = { unspec: 0x0, inet: 0x1, inet6: 0x2, unix: 0x3 } as const;
const TRANSPORT = { unspec: 0x0, stream: 0x1, dgram: 0x2 } as const;

function parseV2(bytes: Uint8Array): ProxyHeader | undefined {
  const versionCommand = bytes[12];
  if (versionCommand === undefined) return undefined;
  if (versionCommand >> 4 !== 2)
    throw new ProxyHeaderError(ProxyHeaderErrorCode.badVersion, `PROXY v2 version ${versionCommand >> 4}`);
  const command = versionCommand & 0x0f;
  if (command > 1) throw new ProxyHeaderError(ProxyHeaderErrorCode.badCommand, `PROXY v2 command ${command}`);
  const familyTransport = bytes[13];
  if (familyTransport === undefined) return undefined;
  const family = familyTransport >> 4;
  const transport = familyTransport & 0x0f;
  if (family > FAMILY.unix || transport > TRANSPORT.dgram)
    throw new ProxyHeaderError(
      ProxyHeaderErrorCode.badFamily,
      `PROXY v2 family and transport 0x${familyTransport.toString(16)}`,
    );
  if (bytes.length < V2_FIXED_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const bodyBytes = view.getUint16(14);
  if (bodyBytes > MAX_V2_BODY_BYTES)
    throw new ProxyHeaderError(
      ProxyHeaderErrorCode.badLength,
      `PROXY v2 length ${bodyBytes} above ${MAX_V2_BODY_BYTES}`,
    );
  // Addresses the header must hold, for the families we read.
  const isTcp = transport === TRANSPORT.stream && (family === FAMILY.inet || family === FAMILY.inet6);
  const addressBytes = !isTcp ? 0 : family === FAMILY.inet ? 12 : 36;
  // LOCAL: "the receiver must ... discard the protocol block including the family".
  if (command === 1 && bodyBytes < addressBytes)
    throw new ProxyHeaderError(
      ProxyHeaderErrorCode.badLength,
      `PROXY v2 length ${bodyBytes} too short for its addresses (${addressBytes})`,
    );
  const length = V2_FIXED_BYTES + bodyBytes;
  if (bytes.length < length) return undefined;
  if (command === 0) return { version: 2, command: 'local', length };
  // UNSPEC, UDP and AF_UNIX: the spec lets a receiver fall back to the real endpoints, and skip
  // the whole body unread.
  if (!isTcp) return { version: 2, command: 'unknown', length };
  checkTlvs(bytes.subarray(V2_FIXED_BYTES + addressBytes, length));
  const at = V2_FIXED_BYTES;
  if (family === FAMILY.inet) {
    return {
      version: 2,
      command: 'proxy',
      source: { address: bytes.subarray(at, at + 4).join('.'), port: view.getUint16(at + 8) },
      destination: { address: bytes.subarray(at + 4, at + 8).join('.'), port: view.getUint16(at + 10) },
      length,
    };
  }
  return {
    version: 2,
    command: 'proxy',
    source: { address: ipv6Text(view, at), port: view.getUint16(at + 32) },
    destination: { address: ipv6Text(view, at + 16), port: view.getUint16(at + 34) },
    length,
  };
}

/** Type, 16-bit length, value, to the end: a TLV cut short is a broken header. Values are not read. */
function checkTlvs(tlvs: Uint8Array): void {
  let at = 0;
  while (at < tlvs.length) {
    if (at + 3 > tlvs.length)
      throw new ProxyHeaderError(ProxyHeaderErrorCode.badTlv, 'PROXY v2 TLV header cut short');
    const valueBytes = ((tlvs[at + 1] ?? 0) << 8) | (tlvs[at + 2] ?? 0);
    at += 3 + valueBytes;
    if (at > tlvs.length)
      throw new ProxyHeaderError(ProxyHeaderErrorCode.badTlv, 'PROXY v2 TLV runs past the header');
  }
}

/** Sixteen bytes as an IPv6 address in the form Node gives `remoteAddress` (inet_ntop's). */
function ipv6Text(view: DataView, at: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(view.getUint16(at + 2 * i).toString(16));
  return canonicalIPv6(groups.join(':'));
}

/** `2001:DB8:0::1` → `2001:db8::1`, `::ffff:102:304` → `::ffff:1.2.3.4`, as Node's own addresses. */
const canonicalIPv6 = (text: string): string => new SocketAddress({ address: text, family: 'ipv6' }).address;
