import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MessageMeter } from '../../../src/message/octets.js';
import { DotStuffer, DotStuffing } from '../../../src/pop3/dot-stuffer.js';
import { chunked } from '../../helpers/chunked.js';

// Hostile input (issue 6): for any stored bytes cut into any chunks, the stuffed body is a valid
// RFC 1939 multi-line body (CRLF lines only, no line that reads as the terminator) that a client
// turns back into the normalised message, whatever the chunking; and the MessageMeter's size and
// isVerbatim agree with what is actually sent.

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/**
 * The reference normalisation, from RFC 1939 and src/message/octets.ts: every LF without a CR
 * before it becomes CRLF; a message that does not end with LF gets one (after a final lone CR, just
 * the LF; otherwise CRLF); an empty message stays empty.
 */
function normalise(input: Buffer): Buffer {
  const out: number[] = [];
  input.forEach((byte, i) => {
    if (byte === LF && (i === 0 || input[i - 1] !== CR)) out.push(CR);
    out.push(byte);
  });
  const last = out[out.length - 1];
  if (last !== undefined && last !== LF) {
    if (last !== CR) out.push(CR);
    out.push(LF);
  }
  return Buffer.from(out);
}

/**
 * A client's reading of a multi-line body (the terminating ".CRLF" already removed): the lines end
 * at CRLF, and a line that starts with a dot loses that one dot. Fails on a body that does not end
 * with CRLF, since a client would not see its last line end.
 */
function unstuff(body: Buffer): Buffer {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = 1; i < body.length; i++) {
    if (body[i] === LF && body[i - 1] === CR) {
      const line = body.subarray(start, i + 1);
      lines.push(line[0] === DOT ? line.subarray(1) : line);
      start = i + 1;
    }
  }
  assert.equal(start, body.length, 'the body ends with CRLF (or is empty)');
  return Buffer.concat(lines);
}

/** DotStuffing over the chunks, end() included. */
function stuff(chunks: readonly Buffer[]): Buffer {
  const stuffing = new DotStuffing();
  const out = chunks.map((chunk) => stuffing.push(chunk));
  out.push(stuffing.end());
  return Buffer.concat(out);
}

/** DotStuffing's verbatim mode over the chunks, end() included, as RETR uses it for a verbatim message. */
function stuffVerbatim(chunks: readonly Buffer[]): Buffer {
  const stuffing = new DotStuffing();
  const out = chunks.map((chunk) => stuffing.pushVerbatim(chunk));
  out.push(stuffing.end());
  return Buffer.concat(out);
}

/**
 * A lenient client's reading of a body: lines end at any LF, and a line that starts with a dot
 * loses that one dot.
 */
function unstuffLenient(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  while (start < body.length) {
    const nl = body.indexOf(LF, start);
    const end = nl === -1 ? body.length : nl + 1;
    parts.push(body.subarray(body[start] === DOT ? start + 1 : start, end));
    start = end;
  }
  return Buffer.concat(parts);
}

/** Whether the body, between a status line and the terminator, could end early for any client. */
function assertNoEarlyEnd(output: Buffer): void {
  // The client ends the body at the first CRLF "." CRLF, counting the status line's CRLF.
  const asSent = Buffer.concat([Buffer.from('+OK\r\n'), output, Buffer.from('.\r\n')]);
  assert.equal(asSent.indexOf('\r\n.\r\n'), asSent.length - 5, 'the only terminator is the last one');
  // Stronger, for clients that take a bare LF as a line end: every dot that starts a line is doubled.
  output.forEach((byte, i) => {
    if (byte === DOT && (i === 0 || output[i - 1] === LF)) {
      assert.equal(output[i + 1], DOT, `the dot at ${i} starts a line and is doubled`);
    }
  });
}

/** The DotStuffer Transform over the chunks, in a pipeline as RETR uses it. */
async function stuffStream(chunks: readonly Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out.push(chunk);
      callback();
    },
  });
  await pipeline(Readable.from(chunks), new DotStuffer(), sink);
  return Buffer.concat(out);
}

function measure(chunks: readonly Uint8Array[]): ReturnType<MessageMeter['finish']> {
  const meter = new MessageMeter();
  for (const chunk of chunks) meter.push(chunk);
  return meter.finish();
}

/** Messages heavy in the bytes that matter (CR, LF, dot), with any other byte now and then. */
const messageArb = fc.oneof(
  fc
    .array(
      fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(CR, LF, DOT) },
        { weight: 2, arbitrary: fc.constantFrom(0x61, 0x20, 0x00, 0xff) },
        { weight: 1, arbitrary: fc.nat(255) },
      ),
      { maxLength: 200 },
    )
    .map((bytes) => Buffer.from(bytes)),
  fc
    .array(
      fc.constantFrom(
        '\r\n',
        '\n',
        '\r',
        '.',
        '..',
        '.\r\n',
        '\n.\n',
        '\r\n.\r\n',
        'Subject: x',
        ' ',
        'body',
      ),
      { maxLength: 40 },
    )
    .map((parts) => Buffer.from(parts.join(''), 'latin1')),
  fc.uint8Array({ maxLength: 2000 }).map((bytes) => Buffer.from(bytes)),
);

const cutsArb = fc.array(fc.nat(), { maxLength: 16 });

describe('DotStuffing on hostile input', () => {
  test('un-stuffing the output gives back the normalised message, for any chunking', () => {
    fc.assert(
      fc.property(messageArb, cutsArb, (message, cuts) => {
        assert.deepEqual(unstuff(stuff(chunked(message, cuts))), normalise(message));
      }),
      { numRuns: 1000 },
    );
  });

  test('the output has no bare LF and no line that reads as the terminator; it ends with CRLF', () => {
    fc.assert(
      fc.property(messageArb, cutsArb, (message, cuts) => {
        const output = stuff(chunked(message, cuts));
        output.forEach((byte, i) => {
          if (byte === LF) assert.equal(output[i - 1], CR, `the LF at ${i} has its CR`);
        });
        assertNoEarlyEnd(output);
        if (message.length === 0) assert.equal(output.length, 0, 'an empty message stays empty');
        else assert.deepEqual(output.subarray(-2), Buffer.from('\r\n'));
      }),
      { numRuns: 1000 },
    );
  });

  test('the output is the same whatever the chunking (random pieces, byte by byte)', () => {
    fc.assert(
      fc.property(messageArb, cutsArb, (message, cuts) => {
        const whole = stuff([message]);
        assert.deepEqual(stuff(chunked(message, cuts)), whole, 'random pieces');
        assert.deepEqual(stuff([...message].map((byte) => Buffer.from([byte]))), whole, 'byte by byte');
      }),
      { numRuns: 500 },
    );
  });

  test('the DotStuffer Transform gives the same bytes as the state machine', async () => {
    await fc.assert(
      fc.asyncProperty(messageArb, cutsArb, async (message, cuts) => {
        const chunks = chunked(message, cuts);
        assert.deepEqual(await stuffStream(chunks), stuff(chunks));
      }),
      { numRuns: 200 },
    );
  });

  test('the input chunks are never modified', () => {
    fc.assert(
      fc.property(messageArb, cutsArb, (message, cuts) => {
        const copy = Buffer.from(message);
        stuff(chunked(message, cuts));
        assert.deepEqual(message, copy);
      }),
      { numRuns: 300 },
    );
  });
});

describe('DotStuffing verbatim mode on hostile input', () => {
  // RETR uses pushVerbatim when the store says the message is already in wire form; the file may
  // have changed since, so the mode must stay safe for any bytes at all.
  test('any bytes, any chunking: no stray dot line can end the reply early, and no byte is lost', () => {
    fc.assert(
      fc.property(messageArb, cutsArb, (message, cuts) => {
        const output = stuffVerbatim(chunked(message, cuts));
        output.forEach((byte, i) => {
          if (byte === DOT && (i === 0 || output[i - 1] === LF)) {
            assert.equal(output[i + 1], DOT, `the dot at ${i} starts a line and is doubled`);
          }
        });
        const asSent = Buffer.concat([Buffer.from('+OK\r\n'), output, Buffer.from('.\r\n')]);
        const terminator = asSent.indexOf('\r\n.\r\n');
        assert.ok(terminator === -1 || terminator === asSent.length - 5, 'no terminator before the end');
        // At most some bare LFs were left bare: the client still gets the message.
        assert.deepEqual(normalise(unstuffLenient(output)), normalise(message));
      }),
      { numRuns: 1000 },
    );
  });

  test('any bytes, any chunking: the body ends with CRLF, so the terminator is seen', () => {
    fc.assert(
      fc.property(messageArb, cutsArb, (message, cuts) => {
        const output = stuffVerbatim(chunked(message, cuts));
        assertNoEarlyEnd(output);
        if (message.length > 0) assert.deepEqual(output.subarray(-2), Buffer.from('\r\n'), 'ends with CRLF');
        else assert.equal(output.length, 0);
      }),
      { numRuns: 1000 },
    );
  });

  test('a message in wire form is sent exactly as stored, as push() would send it', () => {
    fc.assert(
      fc.property(messageArb, cutsArb, (message, cuts) => {
        const wireForm = stuff([message]);
        // Whatever the stored bytes were, what push() sends is in wire form; and so are the
        // stored bytes themselves when the meter says they are verbatim.
        for (const bytes of measure([message]).isVerbatim ? [message, wireForm] : [wireForm]) {
          if (!measure([bytes]).isVerbatim) continue;
          const chunks = chunked(bytes, cuts);
          assert.deepEqual(stuffVerbatim(chunks), bytes);
          assert.deepEqual(stuff(chunks), bytes);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('MessageMeter agrees with what is sent', () => {
  test('size is the length of the normalised message, the same for any chunking', () => {
    fc.assert(
      fc.property(messageArb, cutsArb, (message, cuts) => {
        const measured = measure(chunked(message, cuts));
        const sentThenUnstuffed = unstuff(stuff([message]));
        assert.equal(measured.size, sentThenUnstuffed.length, 'size is what the client gets, un-stuffed');
        assert.equal(measured.size, normalise(message).length);
        assert.equal(measured.storedBytes, message.length);
        assert.deepEqual(measure([message]), measured, 'chunking does not change the measure');
        const bytes = [...message].map((byte) => Uint8Array.of(byte));
        assert.deepEqual(measure(bytes), measured, 'byte by byte, as plain Uint8Arrays');
      }),
      { numRuns: 1000 },
    );
  });

  test('isVerbatim exactly when the stored bytes are sent unchanged', () => {
    fc.assert(
      fc.property(messageArb, cutsArb, (message, cuts) => {
        const { isVerbatim, size } = measure(chunked(message, cuts));
        const isSentUnchanged = stuff([message]).equals(message);
        assert.equal(isVerbatim, isSentUnchanged);
        if (isVerbatim) assert.equal(size, message.length);
      }),
      { numRuns: 1000 },
    );
  });

  test('isVerbatim for messages built verbatim: CRLF lines, none starting with a dot', () => {
    // Random bytes are rarely verbatim; these always are, so the "true" side is tested as hard.
    const line = fc
      .uint8Array({ maxLength: 30 })
      .map((bytes) => Buffer.from(bytes.filter((b) => b !== LF)))
      .filter((bytes) => bytes[0] !== DOT && bytes[bytes.length - 1] !== CR);
    fc.assert(
      fc.property(fc.array(line, { maxLength: 20 }), cutsArb, (lines, cuts) => {
        const message = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\r\n')]));
        const measured = measure(chunked(message, cuts));
        assert.deepEqual(measured, { size: message.length, storedBytes: message.length, isVerbatim: true });
        assert.deepEqual(stuff(chunked(message, cuts)), message);
      }),
      { numRuns: 300 },
    );
  });
});
