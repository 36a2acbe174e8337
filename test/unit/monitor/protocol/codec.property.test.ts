import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import {
  RequestDecoder,
  ResponseDecoder,
  type DecodeResult,
} from '../../../../src/monitor/protocol/decode.js';
import { encodeRequest, encodeResponse } from '../../../../src/monitor/protocol/encode.js';
import {
  ConfigTarget,
  FrameError,
  FrameErrorCode,
  GetTarget,
  MAX_DLEN,
  ResponseFrameError,
  Status,
  type MonitorRequest,
  type MonitorResponse,
} from '../../../../src/monitor/protocol/messages.js';
import { chunked } from '../../../helpers/chunked.js';

// Hostile input (issue 6): whatever bytes arrive, in whatever pieces, a decoder ends in a message,
// "need more", or its typed framing error; never another exception, and never waiting for more
// than the header plus the largest DATA it accepts. The server calls push() inside a socket 'data'
// handler and rethrows anything that is not a FrameError, which would take the process down.

const getTargets = Object.keys(GetTarget) as GetTarget[];
const configTargets = Object.keys(ConfigTarget) as ConfigTarget[];
const statuses = Object.keys(Status) as Status[];
const frameErrorCodes = Object.keys(FrameErrorCode);

const byteByByte = (bytes: Buffer): Buffer[] => [...bytes].map((byte) => Buffer.from([byte]));

const cutsArb = fc.array(fc.nat(), { maxLength: 12 });

/** Small DATA mostly, now and then up to the 16-bit maximum. */
const dataArb = fc
  .oneof(
    { weight: 8, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 60_000, maxLength: MAX_DLEN }) },
    { weight: 1, arbitrary: fc.constant(new Uint8Array(MAX_DLEN).fill(0x2f)) },
  )
  .map((bytes) => Buffer.from(bytes));

const requestArb: fc.Arbitrary<MonitorRequest> = fc.oneof(
  fc.record(
    {
      type: fc.constant('get' as const),
      token: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b)),
      target: fc.constantFrom(...getTargets),
      data: dataArb,
    },
    { noNullPrototype: true },
  ),
  fc.record(
    {
      type: fc.constant('config' as const),
      token: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b)),
      target: fc.constantFrom(...configTargets),
      data: dataArb,
    },
    { noNullPrototype: true },
  ),
);

const responseArb: fc.Arbitrary<MonitorResponse> = fc.record(
  {
    status: fc.constantFrom(...statuses),
    data: dataArb,
  },
  { noNullPrototype: true },
);

/** What the decoder gives back: the encoder sends "no DATA" as the protocol's one 0x00 byte. */
function onTheWire<M extends { readonly data: Buffer }>(message: M, isZeroFilled: boolean): M {
  return isZeroFilled && message.data.length === 0 ? { ...message, data: Buffer.from([0x00]) } : message;
}

type Outcome<M> =
  | { readonly kind: 'message'; readonly message: M; readonly afterBytes: number }
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'error'; readonly code: string };

interface Decoder<M> {
  push(chunk: Buffer): DecodeResult<M>;
}

/**
 * Pushes every chunk; the outcome is the first message or error. A throw that is not the decoder's
 * typed error escapes and fails the property. Pushes after the outcome must repeat it.
 */
function decodeAll<M>(
  decoder: Decoder<M>,
  chunks: readonly Buffer[],
  typedCode: (error: unknown) => string | undefined,
): Outcome<M> {
  let outcome: Outcome<M> = { kind: 'incomplete' };
  let received = 0;
  for (const chunk of chunks) {
    received += chunk.length;
    let result: DecodeResult<M>;
    try {
      result = decoder.push(chunk);
    } catch (error) {
      const code = typedCode(error);
      if (code === undefined) throw error;
      if (outcome.kind === 'message') assert.fail(`error ${code} after a message was decoded`);
      if (outcome.kind === 'error') assert.equal(code, outcome.code, 'a later push repeats the error');
      outcome = { kind: 'error', code };
      continue;
    }
    if (outcome.kind === 'error') assert.fail('a push after an error did not throw it again');
    if (outcome.kind === 'message') {
      assert.ok(result.done, 'a push after the message still gives the message');
      assert.deepEqual(result.message, outcome.message);
      continue;
    }
    if (result.done) outcome = { kind: 'message', message: result.message, afterBytes: received };
  }
  return outcome;
}

const requestErrorCode = (error: unknown): string | undefined => {
  if (!(error instanceof FrameError)) return undefined;
  assert.ok(frameErrorCodes.includes(error.code), `known code ${error.code}`);
  assert.ok(statuses.includes(error.status), `answered with a known status ${error.status}`);
  return error.code;
};

const responseErrorCode = (error: unknown): string | undefined =>
  error instanceof ResponseFrameError ? error.code : undefined;

/** Outcomes compared without the byte count at which the message completed (chunking moves it). */
function shape<M>(outcome: Outcome<M>): unknown {
  return outcome.kind === 'message' ? { kind: 'message', message: outcome.message } : outcome;
}

describe('monitor codec: round trip', () => {
  test('any valid request: decode(encode(request)) is the request, however the bytes are split', () => {
    fc.assert(
      fc.property(requestArb, cutsArb, fc.nat(MAX_DLEN), (request, cuts, extraAllowance) => {
        const bytes = encodeRequest(request);
        const expected = onTheWire(request, request.type === 'get');
        assert.equal(bytes.length, 21 + expected.data.length);
        // Any limit at least as large as the DATA accepts it.
        const maxDataBytes = Math.min(MAX_DLEN, expected.data.length + extraAllowance);
        const decoder = new RequestDecoder(maxDataBytes);
        const outcome = decodeAll(decoder, chunked(bytes, cuts), requestErrorCode);
        assert.deepEqual(shape(outcome), { kind: 'message', message: expected });
        assert.equal(
          outcome.kind === 'message' ? outcome.afterBytes : -1,
          bytes.length,
          'done at the last byte',
        );
        assert.equal(decoder.hasExtraBytes, false);
        // Encoding the decoded request gives the same bytes back.
        assert.ok(outcome.kind === 'message');
        assert.deepEqual(encodeRequest(outcome.message), bytes);
      }),
      { numRuns: 200 },
    );
  });

  test('any valid response: decode(encode(response)) is the response, however the bytes are split', () => {
    fc.assert(
      fc.property(responseArb, cutsArb, (response, cuts) => {
        const bytes = encodeResponse(response);
        const expected = onTheWire(response, true);
        assert.equal(bytes.length, 3 + expected.data.length);
        const outcome = decodeAll(new ResponseDecoder(), chunked(bytes, cuts), responseErrorCode);
        assert.deepEqual(shape(outcome), { kind: 'message', message: expected });
        assert.equal(
          outcome.kind === 'message' ? outcome.afterBytes : -1,
          bytes.length,
          'done at the last byte',
        );
        assert.ok(outcome.kind === 'message');
        assert.deepEqual(encodeResponse(outcome.message), bytes);
      }),
      { numRuns: 200 },
    );
  });

  test('a valid request followed by anything: the request, with hasExtraBytes iff more came', () => {
    fc.assert(
      fc.property(requestArb, fc.uint8Array({ maxLength: 100 }), cutsArb, (request, extra, cuts) => {
        const bytes = Buffer.concat([encodeRequest(request), extra]);
        const decoder = new RequestDecoder();
        const outcome = decodeAll(decoder, chunked(bytes, cuts), requestErrorCode);
        assert.deepEqual(shape(outcome), {
          kind: 'message',
          message: onTheWire(request, request.type === 'get'),
        });
        assert.equal(decoder.hasExtraBytes, extra.length > 0);
      }),
      { numRuns: 200 },
    );
  });
});

/** Random bytes, and bytes that start like a request so that the later checks are reached. */
function hostileRequestBytes(): fc.Arbitrary<Buffer> {
  const anyBytes = fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b));
  const plausible = fc
    .tuple(
      fc.oneof({ weight: 5, arbitrary: fc.constant(0x01) }, { weight: 1, arbitrary: fc.nat(255) }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.oneof(fc.constantFrom(0x00, 0x01), fc.nat(255)),
      fc.oneof(fc.constantFrom(0x00, 0x01, 0x05, 0x06, 0x07, 0x0a, 0x0b, 0x20, 0x21, 0xff), fc.nat(255)),
      fc.oneof(fc.nat(400), fc.nat(MAX_DLEN), fc.constantFrom(0, 1, 8192, 8193, MAX_DLEN)),
      fc.uint8Array({ maxLength: 500 }),
    )
    .map(([version, token, type, target, dlen, rest]) =>
      Buffer.concat([
        Buffer.from([version]),
        token,
        Buffer.from([type, target, dlen >> 8, dlen & 0xff]),
        rest,
      ]),
    );
  return fc.oneof(anyBytes, plausible);
}

describe('monitor codec: hostile bytes', () => {
  test('RequestDecoder: any bytes, any split, any limit: a message, need more, or a FrameError', () => {
    fc.assert(
      fc.property(
        hostileRequestBytes(),
        cutsArb,
        fc.oneof(fc.constant(MAX_DLEN), fc.constant(8192), fc.nat(500)),
        (bytes, cuts, maxDataBytes) => {
          const whole = decodeAll(new RequestDecoder(maxDataBytes), [bytes], requestErrorCode);
          const pieces = decodeAll(new RequestDecoder(maxDataBytes), chunked(bytes, cuts), requestErrorCode);
          const single = decodeAll(new RequestDecoder(maxDataBytes), byteByByte(bytes), requestErrorCode);
          assert.deepEqual(shape(pieces), shape(whole), 'chunking does not change the outcome');
          assert.deepEqual(shape(single), shape(whole), 'byte by byte gives the same outcome');
          // Bounded buffering: by the header plus the largest DATA accepted, the decoder has decided.
          if (bytes.length >= 21 + maxDataBytes) assert.notEqual(whole.kind, 'incomplete');
          if (single.kind === 'message') {
            // The message is exactly one frame: header + DLEN bytes, within the limit.
            const frameBytes = 21 + single.message.data.length;
            assert.equal(single.afterBytes, frameBytes);
            assert.ok(single.message.data.length <= maxDataBytes);
            assert.equal(bytes.readUInt16BE(19), single.message.data.length);
            assert.deepEqual(single.message.token, bytes.subarray(1, 17));
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  test('ResponseDecoder: any bytes, any split: a message, need more, or a ResponseFrameError', () => {
    const plausible = fc
      .tuple(
        fc.oneof(fc.nat(6), fc.nat(255)),
        fc.oneof(fc.nat(300), fc.nat(MAX_DLEN)),
        fc.uint8Array({ maxLength: 400 }),
      )
      .map(([status, dlen, rest]) => Buffer.concat([Buffer.from([status, dlen >> 8, dlen & 0xff]), rest]));
    const bytesArb = fc.oneof(
      fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
      plausible,
    );
    fc.assert(
      fc.property(bytesArb, cutsArb, (bytes, cuts) => {
        const whole = decodeAll(new ResponseDecoder(), [bytes], responseErrorCode);
        const pieces = decodeAll(new ResponseDecoder(), chunked(bytes, cuts), responseErrorCode);
        const single = decodeAll(new ResponseDecoder(), byteByByte(bytes), responseErrorCode);
        assert.deepEqual(shape(pieces), shape(whole), 'chunking does not change the outcome');
        assert.deepEqual(shape(single), shape(whole), 'byte by byte gives the same outcome');
        if (bytes.length >= 3 + MAX_DLEN) assert.notEqual(whole.kind, 'incomplete');
        const statusByte = bytes[0];
        if (statusByte !== undefined && statusByte > 0x06)
          assert.deepEqual(whole, { kind: 'error', code: 'BAD_STATUS' });
        if (single.kind === 'message') {
          assert.equal(single.afterBytes, 3 + single.message.data.length);
          assert.equal(bytes.readUInt16BE(1), single.message.data.length);
        }
      }),
      { numRuns: 400 },
    );
  });

  test('a request or response of the largest DLEN, sent in pieces: need more until the last byte', () => {
    fc.assert(
      fc.property(cutsArb, (cuts) => {
        const request = Buffer.concat([
          Buffer.from([0x01]),
          Buffer.alloc(16, 0x41),
          Buffer.from([0x01, 0x00, 0xff, 0xff]),
          Buffer.alloc(MAX_DLEN, 0x2f),
        ]);
        const got = decodeAll(new RequestDecoder(), chunked(request, cuts), requestErrorCode);
        assert.equal(got.kind === 'message' ? got.afterBytes : -1, request.length);
        const response = Buffer.concat([Buffer.from([0x00, 0xff, 0xff]), Buffer.alloc(MAX_DLEN, 0x20)]);
        const reply = decodeAll(new ResponseDecoder(), chunked(response, cuts), responseErrorCode);
        assert.equal(reply.kind === 'message' ? reply.afterBytes : -1, response.length);
      }),
      { numRuns: 30 },
    );
  });
});

describe('monitor codec: nothing is kept once the outcome is known', () => {
  // Measured after a full GC: a decoder that went on concatenating what comes after a complete (or
  // refused) frame would hold every byte of it. 16 fresh MiB are pushed; a bounded decoder keeps none.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const MIB = 1024 * 1024;

  /**
   * ArrayBuffer memory after a full GC. V8 frees dead ArrayBuffers' memory on a background thread
   * after a GC; the next GC first waits for that to finish, hence two.
   */
  function arrayBufferBytes(): number {
    gc();
    gc();
    return process.memoryUsage().arrayBuffers;
  }

  function retainedAfter(push: (chunk: Buffer) => void): number {
    const before = arrayBufferBytes();
    for (let i = 0; i < 16; i++) push(Buffer.alloc(MIB, 0x61));
    return arrayBufferBytes() - before;
  }

  const swallow = (push: () => void): void => {
    try {
      push();
    } catch (error) {
      if (!(error instanceof FrameError || error instanceof ResponseFrameError)) throw error;
    }
  };

  test('RequestDecoder after a request, and after a FrameError', () => {
    const done = new RequestDecoder();
    assert.ok(
      done.push(
        encodeRequest({ type: 'get', token: Buffer.alloc(16), target: 'snapshot', data: Buffer.alloc(0) }),
      ).done,
    );
    const afterDone = retainedAfter((chunk) => {
      assert.ok(done.push(chunk).done);
    });
    assert.equal(done.hasExtraBytes, true);
    assert.ok(afterDone < 8 * MIB, `kept ${afterDone} bytes pushed after the request`);

    const refused = new RequestDecoder();
    assert.throws(() => refused.push(Buffer.from([0x02])), FrameError);
    const afterError = retainedAfter((chunk) => {
      swallow(() => refused.push(chunk));
    });
    assert.ok(afterError < 8 * MIB, `kept ${afterError} bytes pushed after the error`);
  });

  test('ResponseDecoder after a response, and after a ResponseFrameError', () => {
    const done = new ResponseDecoder();
    assert.ok(done.push(Buffer.from([0x00, 0x00, 0x01, 0x00])).done);
    const afterDone = retainedAfter((chunk) => {
      assert.ok(done.push(chunk).done);
    });
    assert.ok(afterDone < 8 * MIB, `kept ${afterDone} bytes pushed after the response`);

    const refused = new ResponseDecoder();
    assert.throws(() => refused.push(Buffer.from([0x07, 0x00, 0x01])), ResponseFrameError);
    const afterError = retainedAfter((chunk) => {
      swallow(() => refused.push(chunk));
    });
    assert.ok(afterError < 8 * MIB, `kept ${afterError} bytes pushed after the error`);
  });
});
