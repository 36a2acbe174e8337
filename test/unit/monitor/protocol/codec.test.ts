import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  RequestDecoder,
  ResponseDecoder,
  type DecodeResult,
} from '../../../../src/monitor/protocol/decode.js';
import {
  encodeRequest,
  encodeResponse,
  pairData,
  uint32,
  uint64,
} from '../../../../src/monitor/protocol/encode.js';
import {
  ConfigTarget,
  FrameError,
  FrameErrorCode,
  GetTarget,
  RequestType,
  Status,
  type MonitorRequest,
  type MonitorResponse,
} from '../../../../src/monitor/protocol/messages.js';
import { chunked } from '../../../helpers/chunked.js';

/**
 * Bytes from hex typed by hand from the layout in docs/monitor-protocol.md. Spaces only help the
 * reader; anything but whole pairs of hex digits is a typo in the test (Buffer.from would silently
 * drop it).
 */
function hex(text: string): Buffer {
  const digits = text.replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`malformed hex in a test fixture: ${text}`);
  return Buffer.from(digits, 'hex');
}

const ZERO = Buffer.from([0x00]);
const NONE = Buffer.alloc(0);

// Tokens as they appear on the wire, typed by hand.
/** `123456789abcdef1`, the C project's default token. */
const T = '31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 31';
/** `abcdefghijklmnop`. */
const OPS = '61 62 63 64 65 66 67 68 69 6a 6b 6c 6d 6e 6f 70';
/** Any 16 bytes are a well-framed token; only the handlers care what they are. */
const RAW = 'ff fe fd fc fb fa f9 f8 00 01 02 03 04 05 06 07';

const defaultToken = Buffer.from('123456789abcdef1', 'latin1');
const opsToken = Buffer.from('abcdefghijklmnop', 'latin1');
const wrongToken = Buffer.from('wrongwrongwrong!', 'latin1');
const rawToken = Buffer.from([
  0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
]);

function get(target: GetTarget, data: Buffer = ZERO, token: Buffer = defaultToken): MonitorRequest {
  return { type: 'get', token, target, data };
}

function config(target: ConfigTarget, data: Buffer | string, token: Buffer = defaultToken): MonitorRequest {
  return { type: 'config', token, target, data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data };
}

function reply(status: Status, data: Buffer = ZERO): MonitorResponse {
  return { status, data };
}

interface Row<M> {
  readonly name: string;
  readonly message: M;
  /** Hex, by hand. */
  readonly bytes: string;
  /**
   * The encoder writes this message in another (equally valid) form, so only the decoding tests
   * apply; e.g. a GET without data, which the encoder sends as the original client does.
   */
  readonly isDecodeOnly?: boolean;
}

const requestRows: readonly Row<MonitorRequest>[] = [
  // The three examples of the protocol's spec, verbatim.
  {
    name: 'spec example: read historic connections',
    message: get('historicConnections'),
    bytes: '01 31323334353637383961626364656631 00 00 0001 00',
  },
  {
    name: 'spec example: add the POP3 user bob with password secret',
    message: config('setUser', 'bob\0secret'),
    bytes: '01 31323334353637383961626364656631 01 04 000a 626f6200736563726574',
  },
  {
    name: 'spec example: a wrong token',
    message: get('concurrentConnections', ZERO, Buffer.from('123456789abcdef2', 'latin1')),
    bytes: '01 31323334353637383961626364656632 00 01 0001 00',
  },
  // Examples of docs/monitor-protocol.md, verbatim.
  {
    name: 'doc example: GET 0x03, bytes sent as 64 bits',
    message: get('transferredBytes64'),
    bytes: '01 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 31 00 03 00 01 00',
  },
  {
    name: 'doc example: delete the admin ops',
    message: config('deleteAdmin', 'ops'),
    bytes: '01 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 31 01 03 00 03 6f 70 73',
  },
  {
    name: 'doc example: delete the POP3 user bob with a wrong token',
    message: config('deleteUser', 'bob', wrongToken),
    bytes: '01 77 72 6f 6e 67 77 72 6f 6e 67 77 72 6f 6e 67 21 01 05 00 03 62 6f 62',
  },
  // Every GET target, in the original client's 22-byte form: DLEN 1, DATA 0x00.
  {
    name: 'GET 0x00 historic connections',
    message: get('historicConnections'),
    bytes: `01 ${T} 00 00 0001 00`,
  },
  {
    name: 'GET 0x01 concurrent connections',
    message: get('concurrentConnections'),
    bytes: `01 ${T} 00 01 0001 00`,
  },
  { name: 'GET 0x02 transferred bytes', message: get('transferredBytes'), bytes: `01 ${T} 00 02 0001 00` },
  {
    name: 'GET 0x03 transferred bytes, uint64',
    message: get('transferredBytes64'),
    bytes: `01 ${T} 00 03 0001 00`,
  },
  { name: 'GET 0x04 received bytes', message: get('receivedBytes'), bytes: `01 ${T} 00 04 0001 00` },
  {
    name: 'GET 0x05 authenticated sessions',
    message: get('authenticatedSessions'),
    bytes: `01 ${T} 00 05 0001 00`,
  },
  { name: 'GET 0x06 successful logins', message: get('loginsSucceeded'), bytes: `01 ${T} 00 06 0001 00` },
  { name: 'GET 0x07 failed logins', message: get('loginsFailed'), bytes: `01 ${T} 00 07 0001 00` },
  { name: 'GET 0x08 messages retrieved', message: get('messagesRetrieved'), bytes: `01 ${T} 00 08 0001 00` },
  { name: 'GET 0x09 messages deleted', message: get('messagesDeleted'), bytes: `01 ${T} 00 09 0001 00` },
  { name: 'GET 0x0A uptime', message: get('uptimeSeconds'), bytes: `01 ${T} 00 0a 0001 00` },
  { name: 'GET 0x20 snapshot', message: get('snapshot'), bytes: `01 ${T} 00 20 0001 00` },
  { name: 'GET 0x21 users', message: get('users'), bytes: `01 ${T} 00 21 0001 00` },
  { name: 'GET 0x22 admins', message: get('admins'), bytes: `01 ${T} 00 22 0001 00` },
  {
    name: 'GET with DLEN 0 (21 bytes)',
    message: get('historicConnections', NONE),
    bytes: `01 ${T} 00 00 0000`,
    isDecodeOnly: true,
  },
  {
    name: 'GET with three DATA bytes (carried; the handler ignores them)',
    message: get('loginsFailed', Buffer.from('abc')),
    bytes: `01 ${T} 00 07 0003 616263`,
  },
  {
    name: 'GET with a token of arbitrary bytes',
    message: get('uptimeSeconds', ZERO, rawToken),
    bytes: `01 ${RAW} 00 0a 0001 00`,
  },
  // Every CONFIG target with realistic data.
  {
    name: 'CONFIG 0x00 maildir /var/mail/poplar',
    message: config('maildir', '/var/mail/poplar'),
    bytes: `01 ${T} 01 00 0010 2f766172 2f6d6169 6c2f706f 706c6172`,
  },
  {
    name: 'CONFIG 0x01 chunk size 65536',
    message: config('chunkSize', '65536'),
    bytes: `01 ${T} 01 01 0005 3635353336`,
  },
  {
    name: 'CONFIG 0x02 add admin ops with token abcdefghijklmnop',
    message: config('addAdmin', 'ops\0abcdefghijklmnop'),
    bytes: `01 ${T} 01 02 0014 6f7073 00 6162636465666768 696a6b6c6d6e6f70`,
  },
  {
    name: 'CONFIG 0x03 delete admin root, sent by ops',
    message: config('deleteAdmin', 'root', opsToken),
    bytes: `01 ${OPS} 01 03 0004 726f6f74`,
  },
  {
    name: 'CONFIG 0x04 set user bob, password secret',
    message: config('setUser', 'bob\0secret'),
    bytes: `01 ${T} 01 04 000a 626f62 00 736563726574`,
  },
  {
    name: 'CONFIG 0x04 with a UTF-8 user name and password (zoë, pässwörd)',
    message: config('setUser', 'zoë\0pässwörd'),
    bytes: `01 ${T} 01 04 000f 7a6fc3ab 00 70c3a4737377c3b67264`,
  },
  {
    name: 'CONFIG 0x05 delete user zoë',
    message: config('deleteUser', 'zoë'),
    bytes: `01 ${T} 01 05 0004 7a6fc3ab`,
  },
  {
    name: 'CONFIG 0x06 end the sessions of alice',
    message: config('endSessions', 'alice', opsToken),
    bytes: `01 ${OPS} 01 06 0005 616c696365`,
  },
  {
    name: 'CONFIG with DLEN 0 (well framed; the handler refuses it)',
    message: config('chunkSize', NONE),
    bytes: `01 ${T} 01 01 0000`,
  },
  {
    name: 'CONFIG with 258 DATA bytes (both DLEN bytes used, big-endian)',
    message: config('maildir', Buffer.alloc(258, 0x2f)),
    bytes: `01 ${T} 01 00 0102 ${'2f'.repeat(258)}`,
  },
];

const responseRows: readonly Row<MonitorResponse>[] = [
  // The spec's three responses, verbatim.
  {
    name: 'spec example: historic connections = 1',
    message: reply('ok', uint32(1)),
    bytes: '00 0004 00000001',
  },
  { name: 'spec example: CONFIG OK', message: reply('ok'), bytes: '00 0001 00' },
  { name: 'spec example: authentication failed', message: reply('authFailed'), bytes: '05 0001 00' },
  {
    name: 'doc example: uint64 counter 5,000,000,000',
    message: reply('ok', uint64(5_000_000_000)),
    bytes: '00 00 08 00 00 00 01 2a 05 f2 00',
  },
  {
    name: 'doc example: the same count as uint32, saturated',
    message: reply('ok', uint32(5_000_000_000)),
    bytes: '00 00 04 ff ff ff ff',
  },
  { name: 'uint32 counter 305419896', message: reply('ok', uint32(305_419_896)), bytes: '00 0004 12345678' },
  {
    name: 'uint32 counter of 2^32 saturates instead of wrapping to 0',
    message: reply('ok', uint32(2 ** 32)),
    bytes: '00 0004 ffffffff',
  },
  {
    name: 'uint64 counter 2^53 + 2 (beyond a double, as bigint)',
    message: reply('ok', uint64(2n ** 53n + 2n)),
    bytes: '00 0008 0020000000000002',
  },
  { name: 'CONFIG OK', message: reply('ok'), bytes: '00 0001 00' },
  { name: 'status 0x01 unsupported version', message: reply('badVersion'), bytes: '01 0001 00' },
  { name: 'status 0x02 invalid type', message: reply('badType'), bytes: '02 0001 00' },
  { name: 'status 0x03 invalid target', message: reply('badTarget'), bytes: '03 0001 00' },
  { name: 'status 0x04 invalid data', message: reply('badData'), bytes: '04 0001 00' },
  { name: 'status 0x05 authentication failed', message: reply('authFailed'), bytes: '05 0001 00' },
  { name: 'status 0x06 server error', message: reply('serverError'), bytes: '06 0001 00' },
  {
    name: 'JSON snapshot {"user":"zoë"}',
    message: reply('ok', Buffer.from('{"user":"zoë"}', 'utf8')),
    bytes: '00 000f 7b2275736572223a227a6fc3ab227d',
  },
  {
    name: 'JSON snapshot of 300 bytes (both DLEN bytes used)',
    message: reply('ok', Buffer.from(`{${' '.repeat(298)}}`, 'utf8')),
    bytes: `00 012c 7b ${'20'.repeat(298)} 7d`,
  },
  {
    name: 'a response with DLEN 0 (Poplar never sends one)',
    message: reply('ok', NONE),
    bytes: '00 0000',
    isDecodeOnly: true,
  },
];

interface Decoder<M> {
  push(chunk: Buffer): DecodeResult<M>;
}

interface Codec<M> {
  encode(message: M): Buffer;
  newDecoder(): Decoder<M>;
}

function decodeWhole<M>(codec: Codec<M>, bytes: Buffer): M {
  const result = codec.newDecoder().push(bytes);
  assert.ok(result.done, 'a whole message decodes');
  return result.message;
}

function describeRows<M>(title: string, codec: Codec<M>, rows: readonly Row<M>[]): void {
  describe(title, () => {
    for (const row of rows) {
      describe(row.name, () => {
        const bytes = hex(row.bytes);

        if (row.isDecodeOnly !== true) {
          test('encode gives the hand-written bytes', () => {
            assert.equal(codec.encode(row.message).toString('hex'), bytes.toString('hex'));
          });

          test('round trip: decode(encode(message)) is the message', () => {
            assert.deepEqual(decodeWhole(codec, codec.encode(row.message)), row.message);
          });
        }

        test('decode gives the message', () => {
          assert.deepEqual(decodeWhole(codec, bytes), row.message);
        });

        test('split in two at every byte offset', () => {
          for (let at = 0; at < bytes.length; at++) {
            const decoder = codec.newDecoder();
            assert.deepEqual(decoder.push(bytes.subarray(0, at)), { done: false }, `first ${at} bytes`);
            const result = decoder.push(bytes.subarray(at));
            assert.ok(result.done, `split at ${at}: done after the rest`);
            assert.deepEqual(result.message, row.message, `split at ${at}`);
          }
        });

        test('one byte at a time: not done until the last byte', () => {
          const decoder = codec.newDecoder();
          for (let i = 0; i < bytes.length - 1; i++) {
            assert.deepEqual(decoder.push(bytes.subarray(i, i + 1)), { done: false }, `byte ${i}`);
          }
          const result = decoder.push(bytes.subarray(bytes.length - 1));
          assert.ok(result.done, 'done at the last byte');
          assert.deepEqual(result.message, row.message);
        });
      });
    }
  });
}

describeRows(
  'monitor requests',
  { encode: encodeRequest, newDecoder: () => new RequestDecoder() },
  requestRows,
);
describeRows(
  'monitor responses',
  { encode: encodeResponse, newDecoder: () => new ResponseDecoder() },
  responseRows,
);

// The wire values, typed from the spec's tables (not read from messages.ts).
const GET_WIRE: Readonly<Record<GetTarget, number>> = {
  historicConnections: 0x00,
  concurrentConnections: 0x01,
  transferredBytes: 0x02,
  transferredBytes64: 0x03,
  receivedBytes: 0x04,
  authenticatedSessions: 0x05,
  loginsSucceeded: 0x06,
  loginsFailed: 0x07,
  messagesRetrieved: 0x08,
  messagesDeleted: 0x09,
  uptimeSeconds: 0x0a,
  snapshot: 0x20,
  users: 0x21,
  admins: 0x22,
  userInfo: 0x23,
  uidl: 0x24,
  appPasswords: 0x25,
};
const CONFIG_WIRE: Readonly<Record<ConfigTarget, number>> = {
  maildir: 0x00,
  chunkSize: 0x01,
  addAdmin: 0x02,
  deleteAdmin: 0x03,
  setUser: 0x04,
  deleteUser: 0x05,
  endSessions: 0x06,
  reload: 0x07,
  importUidl: 0x08,
  addAppPassword: 0x09,
  revokeAppPassword: 0x0a,
};
const getNames = Object.keys(GET_WIRE) as GetTarget[];
const configNames = Object.keys(CONFIG_WIRE) as ConfigTarget[];

describe('wire tables', () => {
  test('types, targets and statuses have the spec values', () => {
    assert.deepEqual({ ...RequestType }, { get: 0x00, config: 0x01 });
    assert.deepEqual({ ...GetTarget }, GET_WIRE);
    assert.deepEqual({ ...ConfigTarget }, CONFIG_WIRE);
    assert.deepEqual(
      { ...Status },
      {
        ok: 0x00,
        badVersion: 0x01,
        badType: 0x02,
        badTarget: 0x03,
        badData: 0x04,
        authFailed: 0x05,
        serverError: 0x06,
      },
    );
  });
});

/** Pushes one byte at a time; the offset of the byte at which the decoder threw, and what it threw. */
function throwingByte(decoder: RequestDecoder, bytes: Buffer): { at: number; error: unknown } | undefined {
  for (let i = 0; i < bytes.length; i++) {
    try {
      decoder.push(bytes.subarray(i, i + 1));
    } catch (error) {
      return { at: i, error };
    }
  }
  return undefined;
}

function assertFrameError(
  bytes: Buffer,
  expected: { readonly at: number; readonly code: FrameErrorCode; readonly status: Status },
  decoder = new RequestDecoder(),
): void {
  const thrown = throwingByte(decoder, bytes);
  assert.ok(thrown !== undefined, `no error for ${bytes.toString('hex')}`);
  assert.equal(thrown.at, expected.at, `thrown at byte ${thrown.at}`);
  assert.ok(thrown.error instanceof FrameError, String(thrown.error));
  assert.equal(thrown.error.name, 'FrameError');
  assert.equal(thrown.error.code, expected.code);
  assert.equal(thrown.error.status, expected.status);
}

describe('framing errors', () => {
  test('a version other than 0x01 is BAD_VERSION as soon as byte 0 arrives', () => {
    for (const version of ['02', '00', 'ff']) {
      assertFrameError(hex(`${version} ${T} 00 00 0001 00`), {
        at: 0,
        code: 'BAD_VERSION',
        status: 'badVersion',
      });
      // The same when byte 0 is all there is, and when the whole request comes in one chunk.
      assert.throws(() => new RequestDecoder().push(hex(version)), { code: 'BAD_VERSION' });
      assert.throws(() => new RequestDecoder().push(hex(`${version} ${T} 00 00 0001 00`)), {
        code: 'BAD_VERSION',
      });
    }
  });

  test('a type other than GET and CONFIG is BAD_TYPE at byte 17', () => {
    for (const type of ['07', '02', '80', 'ff']) {
      assertFrameError(hex(`01 ${T} ${type} 00 0001 00`), { at: 17, code: 'BAD_TYPE', status: 'badType' });
    }
  });

  test('an unknown GET target is BAD_TARGET at byte 18', () => {
    for (const target of ['0b', '1f', '26', 'ff']) {
      assertFrameError(hex(`01 ${T} 00 ${target} 0001 00`), {
        at: 18,
        code: 'BAD_TARGET',
        status: 'badTarget',
      });
    }
  });

  test('an unknown CONFIG target is BAD_TARGET at byte 18, including GET-only numbers', () => {
    for (const target of ['0b', '0c', '20', 'ff']) {
      assertFrameError(hex(`01 ${T} 01 ${target} 0003 626f62`), {
        at: 18,
        code: 'BAD_TARGET',
        status: 'badTarget',
      });
    }
  });

  test('doc example: GET 0x0B is an unknown target, answered 03 0001 00', () => {
    const bytes = hex('01 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 31 00 0b 00 01 00');
    assert.throws(
      () => new RequestDecoder().push(bytes),
      (error: unknown) => {
        assert.ok(error instanceof FrameError);
        assert.equal(error.code, 'BAD_TARGET');
        assert.equal(encodeResponse({ status: error.status, data: NONE }).toString('hex'), '03000100');
        return true;
      },
    );
  });

  test('a DLEN above maxDataBytes is TOO_LARGE (status badData) as soon as DLEN is known', () => {
    assertFrameError(
      hex(`01 ${T} 01 00 2001`),
      { at: 20, code: 'TOO_LARGE', status: 'badData' },
      new RequestDecoder(8192),
    );
    // Even the original client's GET is too large for a decoder that accepts no DATA.
    assertFrameError(
      hex(`01 ${T} 00 00 0001 00`),
      { at: 20, code: 'TOO_LARGE', status: 'badData' },
      new RequestDecoder(0),
    );
  });

  test('a DLEN equal to maxDataBytes is accepted and waited for', () => {
    const decoder = new RequestDecoder(8192);
    assert.deepEqual(decoder.push(hex(`01 ${T} 01 00 2000`)), { done: false });
    const result = decoder.push(Buffer.alloc(8192, 0x61));
    assert.ok(result.done);
    assert.equal(result.message.data.length, 8192);
  });

  test('by default any DLEN up to 65535 is accepted', () => {
    const decoder = new RequestDecoder();
    assert.deepEqual(decoder.push(hex(`01 ${T} 01 00 ffff`)), { done: false });
    assert.deepEqual(decoder.push(Buffer.alloc(65534)), { done: false });
    const result = decoder.push(Buffer.alloc(1));
    assert.ok(result.done);
    assert.equal(result.message.data.length, 65535);
  });

  test('each error code maps to its status name and status byte', () => {
    const expected: readonly [FrameErrorCode, Status, string][] = [
      ['BAD_VERSION', 'badVersion', '01 0001 00'],
      ['BAD_TYPE', 'badType', '02 0001 00'],
      ['BAD_TARGET', 'badTarget', '03 0001 00'],
      ['TOO_LARGE', 'badData', '04 0001 00'],
    ];
    assert.deepEqual(
      Object.keys(FrameErrorCode).sort(),
      expected.map(([code]) => code).sort(),
      'every code is covered here',
    );
    for (const [code, status, bytes] of expected) {
      const error = new FrameError(code, 'test');
      assert.ok(error instanceof Error);
      assert.equal(error.status, status, code);
      assert.equal(
        encodeResponse({ status: error.status, data: NONE }).toString('hex'),
        hex(bytes).toString('hex'),
      );
    }
  });

  test('ResponseDecoder rejects an unknown status byte', () => {
    for (const bytes of ['07 0001 00', '80 0001 00', 'ff 0004 00000001']) {
      assert.throws(() => new ResponseDecoder().push(hex(bytes)), /unknown status/, bytes);
    }
    // ... also when it arrives one byte at a time.
    const decoder = new ResponseDecoder();
    assert.throws(() => {
      for (const byte of hex('07 0001 00')) decoder.push(Buffer.from([byte]));
    }, /unknown status/);
  });
});

describe('encode edge cases', () => {
  test('a token that is not 16 bytes is a RangeError', () => {
    for (const length of [0, 15, 17]) {
      const token = Buffer.alloc(length, 0x61);
      assert.throws(() => encodeRequest(get('historicConnections', ZERO, token)), RangeError, `${length}`);
      assert.throws(() => encodeRequest(config('setUser', 'bob\0secret', token)), RangeError, `${length}`);
    }
  });

  test('more than 65535 DATA bytes is a RangeError; 65535 fits', () => {
    assert.throws(() => encodeRequest(config('maildir', Buffer.alloc(65536))), RangeError);
    assert.throws(() => encodeResponse(reply('ok', Buffer.alloc(65536))), RangeError);
    const request = encodeRequest(config('maildir', Buffer.alloc(65535, 0x2f)));
    assert.equal(request.length, 21 + 65535);
    assert.equal(request.subarray(17, 21).toString('hex'), '0100ffff');
    const response = encodeResponse(reply('ok', Buffer.alloc(65535, 0x20)));
    assert.equal(response.length, 3 + 65535);
    assert.equal(response.subarray(0, 3).toString('hex'), '00ffff');
  });

  test('a GET without DATA is sent as the original client sends it: DLEN 1, one 0x00', () => {
    assert.equal(
      encodeRequest(get('historicConnections', NONE)).toString('hex'),
      hex(`01 ${T} 00 00 0001 00`).toString('hex'),
    );
  });

  test('a response without DATA carries the one 0x00 byte, for every status', () => {
    const statuses: readonly [Status, string][] = [
      ['ok', '00 0001 00'],
      ['badVersion', '01 0001 00'],
      ['badType', '02 0001 00'],
      ['badTarget', '03 0001 00'],
      ['badData', '04 0001 00'],
      ['authFailed', '05 0001 00'],
      ['serverError', '06 0001 00'],
    ];
    for (const [status, bytes] of statuses) {
      assert.equal(encodeResponse(reply(status, NONE)).toString('hex'), hex(bytes).toString('hex'), status);
    }
  });

  test('uint32 writes big-endian and saturates at 0xFFFFFFFF, never wraps', () => {
    assert.equal(uint32(0).toString('hex'), '00000000');
    assert.equal(uint32(1).toString('hex'), '00000001');
    assert.equal(uint32(0x12345678).toString('hex'), '12345678');
    assert.equal(uint32(2 ** 32 - 1).toString('hex'), 'ffffffff');
    assert.equal(uint32(2 ** 32).toString('hex'), 'ffffffff');
    assert.equal(uint32(2 ** 32 + 1).toString('hex'), 'ffffffff');
    assert.equal(uint32(2 ** 53).toString('hex'), 'ffffffff');
    assert.equal(uint32(2n ** 64n).toString('hex'), 'ffffffff');
  });

  test('uint64 writes big-endian, from 0 to 2^64-1', () => {
    assert.equal(uint64(0).toString('hex'), '0000000000000000');
    assert.equal(uint64(5_000_000_000).toString('hex'), '000000012a05f200');
    assert.equal(uint64(2 ** 53).toString('hex'), '0020000000000000');
    assert.equal(uint64(0x0102030405060708n).toString('hex'), '0102030405060708');
    assert.equal(uint64(2n ** 64n - 1n).toString('hex'), 'ffffffffffffffff');
  });

  test('pairData joins two UTF-8 fields with one NUL', () => {
    assert.equal(pairData('bob', 'secret').toString('hex'), hex('626f62 00 736563726574').toString('hex'));
    assert.equal(pairData('zoë', 'x').toString('hex'), hex('7a6fc3ab 00 78').toString('hex'));
    assert.equal(pairData('', '').toString('hex'), '00');
  });
});

describe('RequestDecoder.hasExtraBytes', () => {
  test('false before and while the request arrives, and when it ends exactly', () => {
    const decoder = new RequestDecoder();
    assert.equal(decoder.hasExtraBytes, false);
    const bytes = hex(`01 ${T} 01 04 000a 626f6200736563726574`);
    for (let i = 0; i < bytes.length; i++) {
      decoder.push(bytes.subarray(i, i + 1));
      assert.equal(decoder.hasExtraBytes, false, `after byte ${i}`);
    }
  });

  test('true when bytes follow the request in the same chunk', () => {
    const decoder = new RequestDecoder();
    const result = decoder.push(hex(`01 ${T} 00 00 0001 00 ff`));
    assert.ok(result.done);
    assert.deepEqual(result.message, get('historicConnections'));
    assert.equal(decoder.hasExtraBytes, true);
  });

  test('true when bytes follow the request in a later chunk', () => {
    const decoder = new RequestDecoder();
    assert.ok(decoder.push(hex(`01 ${T} 01 03 0003 6f7073`)).done);
    assert.equal(decoder.hasExtraBytes, false);
    decoder.push(hex('00'));
    assert.equal(decoder.hasExtraBytes, true);
  });

  test('a GET with DLEN 0 followed by one 0x00 has an extra byte (unlike DLEN 1 + 0x00)', () => {
    const zero = new RequestDecoder();
    const result = zero.push(hex(`01 ${T} 00 00 0000 00`));
    assert.ok(result.done);
    assert.deepEqual(result.message, get('historicConnections', NONE));
    assert.equal(zero.hasExtraBytes, true);
    const one = new RequestDecoder();
    assert.ok(one.push(hex(`01 ${T} 00 00 0001 00`)).done);
    assert.equal(one.hasExtraBytes, false);
  });
});

type Outcome =
  | { readonly kind: 'message'; readonly message: MonitorRequest }
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'error'; readonly code: FrameErrorCode };

/** Pushes the chunks until a message or an error; any other exception escapes (and fails the test). */
function decodeChunks(decoder: RequestDecoder, chunks: readonly Buffer[]): Outcome {
  for (const chunk of chunks) {
    let result: DecodeResult<MonitorRequest>;
    try {
      result = decoder.push(chunk);
    } catch (error) {
      if (error instanceof FrameError) return { kind: 'error', code: error.code };
      throw error;
    }
    if (result.done) return { kind: 'message', message: result.message };
  }
  return { kind: 'incomplete' };
}

/** What the spec says a decoder must make of these bytes: a model written from the layout table. */
function expectedOutcome(b: Buffer, maxDataBytes: number): Outcome {
  if (b.length > 0 && b[0] !== 0x01) return { kind: 'error', code: 'BAD_VERSION' };
  if (b.length > 17 && b[17] !== 0x00 && b[17] !== 0x01) return { kind: 'error', code: 'BAD_TYPE' };
  const isGet = b[17] === 0x00;
  const targets: readonly number[] = Object.values(isGet ? GET_WIRE : CONFIG_WIRE);
  if (b.length > 18 && !targets.includes(b[18] ?? -1)) return { kind: 'error', code: 'BAD_TARGET' };
  if (b.length < 21) return { kind: 'incomplete' };
  const dlen = (b[19] ?? 0) * 256 + (b[20] ?? 0);
  if (dlen > maxDataBytes) return { kind: 'error', code: 'TOO_LARGE' };
  if (b.length < 21 + dlen) return { kind: 'incomplete' };
  const token = Buffer.from(b.subarray(1, 17));
  const data = Buffer.from(b.subarray(21, 21 + dlen));
  const message: MonitorRequest = isGet
    ? { type: 'get', token, target: getNames.find((n) => GET_WIRE[n] === b[18]) ?? 'snapshot', data }
    : { type: 'config', token, target: configNames.find((n) => CONFIG_WIRE[n] === b[18]) ?? 'maildir', data };
  return { kind: 'message', message };
}

/** Fixed, so a failure can be replayed; fast-check prints the seed and path of any counterexample. */
const SEED = 0x504f5033;

describe('RequestDecoder on random input', () => {
  test('any bytes in any chunking: a message, not done, or a FrameError, as the spec says', () => {
    const anyBytes = fc.uint8Array({ maxLength: 300 });
    // Mostly well-formed headers, so that the later checks (type, target, DLEN, DATA) are reached.
    const plausible = fc
      .tuple(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.oneof(fc.constantFrom(0x00, 0x01), fc.integer({ min: 0, max: 255 })),
        fc.oneof(fc.constantFrom(0x00, 0x06, 0x07, 0x0a, 0x0b, 0x20, 0x21), fc.integer({ min: 0, max: 255 })),
        fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 0xffff })),
        fc.uint8Array({ maxLength: 300 }),
      )
      .map(([token, type, target, dlen, rest]) =>
        Buffer.concat([
          Buffer.from([0x01]),
          token,
          Buffer.from([type, target, dlen >> 8, dlen & 0xff]),
          rest,
        ]),
      );
    fc.assert(
      fc.property(
        fc.oneof(
          anyBytes.map((b) => Buffer.from(b)),
          plausible,
        ),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.oneof(fc.constant(0xffff), fc.integer({ min: 0, max: 400 })),
        (bytes, cuts, maxDataBytes) => {
          const expected = expectedOutcome(bytes, maxDataBytes);
          assert.deepEqual(decodeChunks(new RequestDecoder(maxDataBytes), [bytes]), expected, 'in one chunk');
          const chunks = chunked(bytes, cuts);
          assert.deepEqual(decodeChunks(new RequestDecoder(maxDataBytes), chunks), expected, 'in chunks');
        },
      ),
      { seed: SEED, numRuns: 1000 },
    );
  });

  test('a valid request built from random fields decodes back to them however it is chunked', () => {
    const request = fc.tuple(
      fc.boolean(),
      fc.nat(),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ maxLength: 1000 }),
    );
    fc.assert(
      fc.property(
        request,
        fc.array(fc.nat(), { maxLength: 20 }),
        ([isGet, pick, tokenBytes, dataBytes], cuts) => {
          const token = Buffer.from(tokenBytes);
          const data = Buffer.from(dataBytes);
          const getTarget = getNames[pick % getNames.length] ?? 'snapshot';
          const configTarget = configNames[pick % configNames.length] ?? 'maildir';
          const message: MonitorRequest = isGet
            ? { type: 'get', token, target: getTarget, data }
            : { type: 'config', token, target: configTarget, data };
          // Built by hand from the layout table, not by encodeRequest.
          const bytes = Buffer.concat([
            Buffer.from([0x01]),
            token,
            Buffer.from([
              isGet ? 0x00 : 0x01,
              isGet ? GET_WIRE[getTarget] : CONFIG_WIRE[configTarget],
              data.length >> 8,
              data.length & 0xff,
            ]),
            data,
          ]);
          assert.deepEqual(decodeChunks(new RequestDecoder(), chunked(bytes, cuts)), {
            kind: 'message',
            message,
          });
          // The encoder agrees, except that it sends a GET without data in the original client's form.
          if (!(isGet && data.length === 0)) assert.deepEqual(encodeRequest(message), bytes);
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });
});
