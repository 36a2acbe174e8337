import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  MAX_PROXY_HEADER_BYTES,
  MAX_V2_BODY_BYTES,
  parseProxyHeader,
  ProxyHeaderError,
  startsWithProxyHeader,
  type ProxyHeader,
  type ProxyHeaderErrorCode,
} from '../../../src/pop3/proxy-protocol.js';

// HAProxy's doc/proxy-protocol.txt, versions 1 (text) and 2 (binary). Expected bytes are built by
// hand here, not by any encoder of ours.

const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** A v2 header: signature, version/command byte, family/transport byte, 16-bit length, body. */
function v2(verCmd: number, famProto: number, body: readonly number[], length = body.length): Buffer {
  return Buffer.from([...SIG, verCmd, famProto, length >> 8, length & 0xff, ...body]);
}
const ipv4 = (text: string): number[] => text.split('.').map(Number);
const port = (n: number): number[] => [n >> 8, n & 0xff];
const ipv6Bytes = (groups: readonly number[]): number[] => groups.flatMap((g) => [g >> 8, g & 0xff]);
const tlv = (type: number, value: readonly number[]): number[] => [type, ...port(value.length), ...value];

const TCP4_BODY = [...ipv4('203.0.113.7'), ...ipv4('10.0.0.11'), ...port(51234), ...port(110)];
const TCP6_BODY = [
  ...ipv6Bytes([0x2001, 0xdb8, 0, 0, 0, 0, 0, 7]),
  ...ipv6Bytes([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11]),
  ...port(40000),
  ...port(995),
];
const MAPPED_BODY = [
  ...ipv6Bytes([0, 0, 0, 0, 0, 0xffff, 0xcb00, 0x7107]),
  ...ipv6Bytes([0, 0, 0, 0, 0, 0, 0, 1]),
  ...port(1),
  ...port(2),
];

const proxied = (
  version: 1 | 2,
  source: string,
  sourcePort: number,
  destination: string,
  destinationPort: number,
  length: number,
): ProxyHeader => ({
  version,
  command: 'proxy',
  source: { address: source, port: sourcePort },
  destination: { address: destination, port: destinationPort },
  length,
});

const VALID: readonly { name: string; bytes: Buffer; header: ProxyHeader }[] = [
  {
    name: 'v1 TCP4',
    bytes: Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.11 51234 110\r\n'),
    header: proxied(1, '203.0.113.7', 51234, '10.0.0.11', 110, 44),
  },
  {
    name: 'v1 TCP4, the longest line',
    bytes: Buffer.from('PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n'),
    header: proxied(1, '255.255.255.255', 65535, '255.255.255.255', 65535, 56),
  },
  {
    name: 'v1 TCP4, zeros',
    bytes: Buffer.from('PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n'),
    header: proxied(1, '0.0.0.0', 0, '0.0.0.0', 0, 32),
  },
  {
    name: 'v1 TCP6, upper case, written canonical',
    bytes: Buffer.from('PROXY TCP6 2001:DB8:0:0:0:0:0:7 2001:db8::11 40000 995\r\n'),
    header: proxied(1, '2001:db8::7', 40000, '2001:db8::11', 995, 56),
  },
  {
    name: 'v1 TCP6, an IPv4-mapped address',
    bytes: Buffer.from('PROXY TCP6 ::ffff:203.0.113.7 ::1 1 2\r\n'),
    header: proxied(1, '::ffff:203.0.113.7', 1, '::1', 2, 39),
  },
  {
    name: 'v1 UNKNOWN, short form',
    bytes: Buffer.from('PROXY UNKNOWN\r\n'),
    header: { version: 1, command: 'unknown', length: 15 },
  },
  {
    name: 'v1 UNKNOWN, the longest line, anything after UNKNOWN ignored',
    bytes: Buffer.from(`PROXY UNKNOWN ${'f'.repeat(39)} ${'f'.repeat(39)} 65535 65535\r\n`),
    header: { version: 1, command: 'unknown', length: 107 },
  },
  {
    name: 'v2 PROXY TCP4',
    bytes: v2(0x21, 0x11, TCP4_BODY),
    header: proxied(2, '203.0.113.7', 51234, '10.0.0.11', 110, 28),
  },
  {
    name: 'v2 PROXY TCP6',
    bytes: v2(0x21, 0x21, TCP6_BODY),
    header: proxied(2, '2001:db8::7', 40000, '2001:db8::11', 995, 52),
  },
  {
    name: 'v2 PROXY TCP6 with an IPv4-mapped address, shown as Node shows it',
    bytes: v2(0x21, 0x21, MAPPED_BODY),
    header: proxied(2, '::ffff:203.0.113.7', 1, '::1', 2, 52),
  },
  {
    name: 'v2 PROXY TCP4 with TLVs (ALPN, NOOP, an empty one, SSL), skipped',
    bytes: v2(0x21, 0x11, [
      ...TCP4_BODY,
      ...tlv(0x01, [...Buffer.from('pop3')]),
      ...tlv(0x04, []),
      ...tlv(0x20, [1, 0, 0, 0, 0, ...tlv(0x21, [...Buffer.from('TLSv1.3')])]),
    ]),
    header: proxied(2, '203.0.113.7', 51234, '10.0.0.11', 110, 28 + 7 + 3 + 18),
  },
  {
    name: 'v2 LOCAL, no addresses',
    bytes: v2(0x20, 0x00, []),
    header: { version: 2, command: 'local', length: 16 },
  },
  {
    name: 'v2 LOCAL with addresses, which are ignored',
    bytes: v2(0x20, 0x11, TCP4_BODY),
    header: { version: 2, command: 'local', length: 28 },
  },
  {
    name: 'v2 LOCAL with a family too short for its addresses: ignored too',
    bytes: v2(0x20, 0x21, [1, 2, 3]),
    header: { version: 2, command: 'local', length: 19 },
  },
  {
    name: 'v2 PROXY UNSPEC: the real endpoints',
    bytes: v2(0x21, 0x00, []),
    header: { version: 2, command: 'unknown', length: 16 },
  },
  {
    name: 'v2 PROXY UDP over IPv4: falls back to UNSPEC',
    bytes: v2(0x21, 0x12, TCP4_BODY),
    header: { version: 2, command: 'unknown', length: 28 },
  },
  {
    name: 'v2 PROXY AF_UNIX stream: falls back to UNSPEC',
    bytes: v2(0x21, 0x31, Array<number>(216).fill(0)),
    header: { version: 2, command: 'unknown', length: 232 },
  },
  {
    name: 'v2 at the length bound',
    bytes: v2(0x21, 0x11, [...TCP4_BODY, ...tlv(0x04, Array<number>(MAX_V2_BODY_BYTES - 12 - 3).fill(0))]),
    header: proxied(2, '203.0.113.7', 51234, '10.0.0.11', 110, MAX_PROXY_HEADER_BYTES),
  },
];

const INVALID: readonly { name: string; bytes: Buffer; code: ProxyHeaderErrorCode }[] = [
  { name: 'a POP3 command', bytes: Buffer.from('CAPA\r\n'), code: 'NOT_PROXY' },
  { name: 'lower case proxy', bytes: Buffer.from('proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n'), code: 'NOT_PROXY' },
  { name: 'a TLS ClientHello', bytes: Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), code: 'NOT_PROXY' },
  { name: 'PROXY without its space', bytes: Buffer.from('PROXYTCP4\r\n'), code: 'NOT_PROXY' },
  { name: 'v1 ended by a lone LF', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'), code: 'BAD_V1' },
  {
    name: 'v1 with a lone CR inside',
    bytes: Buffer.from('PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n'),
    code: 'BAD_V1',
  },
  { name: 'v1 family TCP5', bytes: Buffer.from('PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n'), code: 'BAD_V1' },
  { name: 'v1 with no family', bytes: Buffer.from('PROXY \r\n'), code: 'BAD_V1' },
  { name: 'v1 with two spaces', bytes: Buffer.from('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'), code: 'BAD_V1' },
  { name: 'v1 missing a port', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), code: 'BAD_V1' },
  {
    name: 'v1 with a seventh field',
    bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n'),
    code: 'BAD_V1',
  },
  { name: 'v1 trailing space', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n'), code: 'BAD_V1' },
  { name: 'v1 TCP4 with an IPv6 address', bytes: Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n'), code: 'BAD_V1' },
  {
    name: 'v1 TCP6 with IPv4 addresses',
    bytes: Buffer.from('PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n'),
    code: 'BAD_V1',
  },
  { name: 'v1 TCP6 with a zone', bytes: Buffer.from('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'), code: 'BAD_V1' },
  { name: 'v1 octet 256', bytes: Buffer.from('PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n'), code: 'BAD_V1' },
  {
    name: 'v1 octal-looking octet',
    bytes: Buffer.from('PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n'),
    code: 'BAD_V1',
  },
  { name: 'v1 a host name', bytes: Buffer.from('PROXY TCP4 localhost 5.6.7.8 1 2\r\n'), code: 'BAD_V1' },
  { name: 'v1 port 65536', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'), code: 'BAD_V1' },
  {
    name: 'v1 port with a leading zero',
    bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n'),
    code: 'BAD_V1',
  },
  { name: 'v1 negative port', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n'), code: 'BAD_V1' },
  { name: 'v1 port in hex', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 0x1 2\r\n'), code: 'BAD_V1' },
  {
    name: 'v1 with no CRLF in 107 bytes',
    bytes: Buffer.from(`PROXY UNKNOWN ${'f'.repeat(39)} ${'f'.repeat(39)} 65535 655350\r\n`),
    code: 'V1_TOO_LONG',
  },
  { name: 'v1 of 200 bytes', bytes: Buffer.from(`PROXY TCP4 ${'1'.repeat(189)}`), code: 'V1_TOO_LONG' },
  { name: 'v2 version 1', bytes: v2(0x11, 0x11, TCP4_BODY), code: 'BAD_VERSION' },
  { name: 'v2 version 3', bytes: v2(0x31, 0x11, TCP4_BODY), code: 'BAD_VERSION' },
  { name: 'v2 command 2', bytes: v2(0x22, 0x11, TCP4_BODY), code: 'BAD_COMMAND' },
  { name: 'v2 command 15', bytes: v2(0x2f, 0x11, TCP4_BODY), code: 'BAD_COMMAND' },
  { name: 'v2 family 4', bytes: v2(0x21, 0x41, TCP4_BODY), code: 'BAD_FAMILY' },
  { name: 'v2 transport 3', bytes: v2(0x21, 0x13, TCP4_BODY), code: 'BAD_FAMILY' },
  { name: 'v2 LOCAL with family 15', bytes: v2(0x20, 0xf0, []), code: 'BAD_FAMILY' },
  {
    name: 'v2 length past the bound',
    bytes: v2(0x21, 0x11, TCP4_BODY, MAX_V2_BODY_BYTES + 1),
    code: 'BAD_LENGTH',
  },
  { name: 'v2 length 65535', bytes: v2(0x21, 0x11, TCP4_BODY, 0xffff), code: 'BAD_LENGTH' },
  {
    name: 'v2 TCP4 shorter than its addresses',
    bytes: v2(0x21, 0x11, TCP4_BODY.slice(0, 11)),
    code: 'BAD_LENGTH',
  },
  { name: 'v2 TCP6 shorter than its addresses', bytes: v2(0x21, 0x21, TCP4_BODY), code: 'BAD_LENGTH' },
  { name: 'v2 TLV cut in its head', bytes: v2(0x21, 0x11, [...TCP4_BODY, 0x04, 0x00]), code: 'BAD_TLV' },
  {
    name: 'v2 TLV longer than the header',
    bytes: v2(0x21, 0x11, [...TCP4_BODY, 0x04, 0x00, 0x05, 1]),
    code: 'BAD_TLV',
  },
];

/** The parser's answer as a comparable value. */
function outcome(bytes: Uint8Array): ProxyHeader | 'partial' | ProxyHeaderErrorCode {
  try {
    return parseProxyHeader(bytes) ?? 'partial';
  } catch (error) {
    if (error instanceof ProxyHeaderError) return error.code;
    throw error;
  }
}

describe('PROXY protocol parser', () => {
  for (const { name, bytes, header } of VALID) {
    test(`${name}: parsed`, () => {
      assert.deepEqual(parseProxyHeader(bytes), header);
      assert.ok(startsWithProxyHeader(bytes));
    });
    test(`${name}: what follows the header is not read`, () => {
      const followed = Buffer.concat([bytes, Buffer.from('CAPA\r\n')]);
      assert.deepEqual(parseProxyHeader(followed), header);
    });
    test(`${name}: every shorter prefix asks for more bytes`, () => {
      for (let n = 0; n < bytes.length; n++)
        assert.equal(outcome(bytes.subarray(0, n)), 'partial', `at ${n}`);
    });
  }

  for (const { name, bytes, code } of INVALID) {
    test(`${name}: ${code}`, () => {
      assert.equal(outcome(bytes), code);
    });
  }

  test('a header cut short is partial, not an error: the reader decides when to stop waiting', () => {
    assert.equal(outcome(Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.11 51234 1')), 'partial');
    assert.equal(outcome(v2(0x21, 0x11, TCP4_BODY).subarray(0, 20)), 'partial');
    assert.equal(outcome(Buffer.from(SIG.slice(0, 7))), 'partial');
  });

  test('startsWithProxyHeader: `PROXY ` or the first five bytes of the v2 signature, nothing else', () => {
    assert.ok(startsWithProxyHeader(Buffer.from('PROXY TCP4')));
    assert.ok(startsWithProxyHeader(Buffer.from(SIG.slice(0, 5))));
    assert.ok(!startsWithProxyHeader(Buffer.from('PROXY')));
    assert.ok(!startsWithProxyHeader(Buffer.from('\r\n\r\n')));
    assert.ok(!startsWithProxyHeader(Buffer.from('\r\nUSER alice\r\n')));
    assert.ok(!startsWithProxyHeader(Buffer.from('CAPA\r\n')));
  });
});

describe('PROXY protocol parser, any bytes', () => {
  const bytesArb = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    // Valid starts, so that the random tail reaches the deeper checks.
    fc
      .tuple(fc.constantFrom(...VALID.map((v) => v.bytes)), fc.nat(), fc.uint8Array({ maxLength: 64 }))
      .map(([valid, cut, tail]) => Buffer.concat([valid.subarray(0, cut % (valid.length + 1)), tail])),
    fc
      .tuple(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 255 }),
        fc.uint8Array({ maxLength: 80 }),
      )
      .map(([verCmd, fam, body]) => v2(verCmd, fam, [...body])),
    fc
      .array(
        fc.constantFrom(
          'PROXY',
          ' ',
          'TCP4',
          'TCP6',
          'UNKNOWN',
          '1.2.3.4',
          '::1',
          '0',
          '65535',
          '\r',
          '\n',
          'x',
        ),
        {
          maxLength: 14,
        },
      )
      .map((parts) => Buffer.from(`PROXY ${parts.join('')}`)),
  );

  test('ends in a header, a request for more bytes, or a ProxyHeaderError; never anything else', () => {
    fc.assert(
      fc.property(bytesArb, (bytes) => {
        let result: ProxyHeader | undefined;
        try {
          result = parseProxyHeader(bytes);
        } catch (error) {
          assert.ok(error instanceof ProxyHeaderError, `threw ${String(error)}`);
          return;
        }
        if (result === undefined) {
          assert.ok(bytes.length < MAX_PROXY_HEADER_BYTES);
          return;
        }
        assert.ok(result.length <= bytes.length && result.length <= MAX_PROXY_HEADER_BYTES);
        if (result.command === 'proxy') {
          assert.ok(result.source.port >= 0 && result.source.port <= 65535);
          assert.ok(result.source.address.length > 0);
        }
      }),
      { numRuns: 5000 },
    );
  });

  test('reads nothing past the bound: the answer for the first MAX_PROXY_HEADER_BYTES bytes is the answer', () => {
    fc.assert(
      fc.property(bytesArb, fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes, more) => {
        const longer = Buffer.concat([bytes, more]);
        const first = outcome(bytes);
        // Once decided, more bytes change nothing.
        if (first !== 'partial') assert.deepEqual(outcome(longer), first);
      }),
      { numRuns: 2000 },
    );
  });

  test('MAX_PROXY_HEADER_BYTES of anything is always decided', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 0, max: 255 }), (head, fill) => {
        const full = Buffer.alloc(MAX_PROXY_HEADER_BYTES + 10, fill);
        Buffer.from(head).copy(full);
        assert.notEqual(outcome(full), 'partial');
        assert.notEqual(outcome(Buffer.concat([Buffer.from(SIG), full])), 'partial');
        assert.notEqual(outcome(Buffer.concat([Buffer.from('PROXY '), full])), 'partial');
      }),
      { numRuns: 300 },
    );
  });
});
