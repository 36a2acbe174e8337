import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { measureMessage } from '../../../src/message/octets.js';
import { DotStuffer, DotStuffing } from '../../../src/pop3/dot-stuffer.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Runs the state machine over the chunks and returns everything it produced, `end()` included. */
function stuff(chunks: readonly Buffer[]): Buffer {
  const stuffing = new DotStuffing();
  const out = chunks.map((c) => stuffing.push(c));
  out.push(stuffing.end());
  return Buffer.concat(out);
}

/** Runs the Transform over the chunks, returning the chunks it emitted. */
async function stuffStream(chunks: readonly Buffer[]): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out.push(chunk);
      callback();
    },
  });
  await pipeline(Readable.from(chunks), new DotStuffer(), sink);
  return out;
}

// Expected output written by hand from RFC 1939 section 3: CRLF line ends, a leading "." doubled,
// a final line end added. The terminating ".\r\n" is not the stuffer's.
const FIXTURES: readonly { name: string; input: Buffer; output: Buffer }[] = [
  { name: 'bare LF', input: b('a\nb\n'), output: b('a\r\nb\r\n') },
  { name: 'CRLF kept', input: b('a\r\nb\r\n'), output: b('a\r\nb\r\n') },
  { name: 'mixed line ends', input: b('a\r\nb\nc\r\n'), output: b('a\r\nb\r\nc\r\n') },
  { name: 'leading dot on the first line', input: b('.a\n'), output: b('..a\r\n') },
  { name: 'a line that is just a dot', input: b('x\n.\n'), output: b('x\r\n..\r\n') },
  { name: 'dots on several lines', input: b('..\r\n.x'), output: b('...\r\n..x\r\n') },
  { name: 'dot after an empty line', input: b('a\n\n.b'), output: b('a\r\n\r\n..b\r\n') },
  { name: 'a dot alone, no line end', input: b('.'), output: b('..\r\n') },
  { name: 'dot on the last line without line end', input: b('\r\n.'), output: b('\r\n..\r\n') },
  { name: 'dot not at line start', input: b('a.b\n a.\n'), output: b('a.b\r\n a.\r\n') },
  { name: 'missing final line end', input: b('a'), output: b('a\r\n') },
  { name: 'trailing lone CR gets just LF', input: b('a\r'), output: b('a\r\n') },
  { name: 'lone CR inside a line is data', input: b('a\rb'), output: b('a\rb\r\n') },
  { name: 'CR CR LF', input: b('a\r\r\n'), output: b('a\r\r\n') },
  { name: 'just LF', input: b('\n'), output: b('\r\n') },
  { name: 'just CR', input: b('\r'), output: b('\r\n') },
  { name: 'empty message', input: b(''), output: b('') },
  {
    name: '8-bit bytes',
    input: Buffer.from([0xff, 0x0a, 0x2e, 0x80, 0x00]),
    output: Buffer.from([0xff, 0x0d, 0x0a, 0x2e, 0x2e, 0x80, 0x00, 0x0d, 0x0a]),
  },
  {
    name: 'a small message',
    input: b('Subject: hi\n\n.signature\n..\nend'),
    output: b('Subject: hi\r\n\r\n..signature\r\n...\r\nend\r\n'),
  },
];

describe('DotStuffing', () => {
  for (const { name, input, output } of FIXTURES) {
    test(`${name}: whole`, () => {
      assert.deepEqual(stuff([input]), output);
    });

    test(`${name}: split at every byte offset, into two and three chunks`, () => {
      for (let i = 0; i <= input.length; i++) {
        assert.deepEqual(stuff([input.subarray(0, i), input.subarray(i)]), output, `split at ${i}`);
        for (let j = i; j <= input.length; j++) {
          const parts = [input.subarray(0, i), input.subarray(i, j), input.subarray(j)];
          assert.deepEqual(stuff(parts), output, `split at ${i} and ${j}`);
        }
      }
    });

    test(`${name}: byte by byte`, () => {
      assert.deepEqual(stuff([...input].map((byte) => Buffer.from([byte]))), output);
    });
  }

  describe('across chunk boundaries', () => {
    test('LF at the end of one chunk, dot at the start of the next', () => {
      assert.deepEqual(stuff([b('a\n'), b('.b\n')]), b('a\r\n..b\r\n'));
      assert.deepEqual(stuff([b('a\r\n'), b('.b\r\n')]), b('a\r\n..b\r\n'));
    });

    test('CR at the end of one chunk, LF at the start of the next: no second CR', () => {
      assert.deepEqual(stuff([b('a\r'), b('\nb\r\n')]), b('a\r\nb\r\n'));
      assert.deepEqual(stuff([b('a\r'), b('\n.b\r\n')]), b('a\r\n..b\r\n'));
    });

    test('a CR chunk, then an LF chunk, then a dot chunk', () => {
      assert.deepEqual(stuff([b('a'), b('\r'), b('\n'), b('.'), b('\n')]), b('a\r\n..\r\n'));
    });

    test('a bare LF at the start of a chunk after a non-CR byte gets its CR', () => {
      assert.deepEqual(stuff([b('a'), b('\nb')]), b('a\r\nb\r\n'));
    });

    test('an empty chunk changes no state', () => {
      assert.deepEqual(stuff([b('a\r'), b(''), b('\n'), b(''), b('.x\n')]), b('a\r\n..x\r\n'));
      assert.deepEqual(stuff([b(''), b('.x')]), b('..x\r\n'));
    });

    test('a dot in the middle of a chunk is not at line start', () => {
      assert.deepEqual(stuff([b('a'), b('.b\n')]), b('a.b\r\n'));
    });
  });

  describe('no copy when nothing changes', () => {
    test('a chunk with only CRLF lines and no leading dot is returned as it is', () => {
      const stuffing = new DotStuffing();
      const chunk = b('Subject: x\r\n\r\nbody\r\n');
      assert.equal(stuffing.push(chunk), chunk);
      const next = b('more body, no line end yet');
      assert.equal(stuffing.push(next), next);
      const last = b(' ...\r\n');
      assert.equal(stuffing.push(last), last);
      assert.equal(stuffing.end().length, 0);
    });

    test('an LF completing a CR from the previous chunk needs no copy', () => {
      const stuffing = new DotStuffing();
      stuffing.push(b('a\r'));
      const lf = b('\nb');
      assert.equal(stuffing.push(lf), lf);
    });

    test('an empty chunk is returned as it is', () => {
      const empty = Buffer.alloc(0);
      assert.equal(new DotStuffing().push(empty), empty);
    });

    test('a changed chunk is a new buffer and the input is not modified', () => {
      const chunk = b('.a\nb\n');
      const out = new DotStuffing().push(chunk);
      assert.notEqual(out, chunk);
      assert.deepEqual(chunk, b('.a\nb\n'));
      assert.deepEqual(out, b('..a\r\nb\r\n'));
    });
  });

  test('end() for an empty message (pushes of empty chunks only) is empty', () => {
    const stuffing = new DotStuffing();
    stuffing.push(Buffer.alloc(0));
    assert.equal(stuffing.end().length, 0);
  });
});

describe('DotStuffer (Transform)', () => {
  for (const { name, input, output } of FIXTURES) {
    test(`${name}: every two-chunk split gives the unsplit result`, async () => {
      assert.deepEqual(Buffer.concat(await stuffStream([input])), output);
      for (let i = 0; i <= input.length; i++) {
        const got = await stuffStream([input.subarray(0, i), input.subarray(i)].filter((c) => c.length > 0));
        assert.deepEqual(Buffer.concat(got), output, `split at ${i}`);
      }
    });
  }

  test('empty message: nothing is emitted', async () => {
    assert.deepEqual(await stuffStream([]), []);
  });

  test('unchanged chunks pass through as the same Buffer instance', async () => {
    const first = b('Subject: x\r\n\r\n');
    const second = b('body\r\n');
    const out = await stuffStream([first, second]);
    assert.equal(out.length, 2);
    assert.equal(out[0], first);
    assert.equal(out[1], second);
  });

  test('the final line end is emitted by the flush', async () => {
    const out = await stuffStream([b('abc')]);
    assert.deepEqual(out, [b('abc'), b('\r\n')]);
    assert.deepEqual(await stuffStream([b('abc\r')]), [b('abc\r'), b('\n')]);
  });
});

// Reference implementations, written from the RFC text independently of the code under test.

/** RFC 1939 form of a stored message before stuffing: CRLF line ends, ending in CRLF unless empty. */
function normalise(input: Uint8Array): Buffer {
  const out: number[] = [];
  for (let i = 0; i < input.length; i++) {
    const byte = input[i] ?? 0;
    if (byte === 0x0a && (i === 0 || input[i - 1] !== 0x0d)) out.push(0x0d);
    out.push(byte);
  }
  if (out.length > 0 && out[out.length - 1] !== 0x0a) {
    if (out[out.length - 1] !== 0x0d) out.push(0x0d);
    out.push(0x0a);
  }
  return Buffer.from(out);
}

/** Splits stuffed output into its CRLF-terminated lines (each line keeps its CRLF). */
function crlfLines(output: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = 1; i < output.length; i++) {
    if (output[i] === 0x0a && output[i - 1] === 0x0d) {
      lines.push(output.subarray(start, i + 1));
      start = i + 1;
    }
  }
  assert.equal(start, output.length, 'output ends with CRLF');
  return lines;
}

const messageBytes = fc
  .array(fc.constantFrom(0x0d, 0x0a, 0x2e, 0x61, 0x20, 0xff, 0x00), { maxLength: 60 })
  .map((bytes) => Buffer.from(bytes));
const chunked = fc
  .tuple(messageBytes, fc.array(fc.nat(), { maxLength: 8 }))
  .map(([message, cuts]): [Buffer, Buffer[]] => {
    const offsets = [...new Set(cuts.map((c) => c % (message.length + 1)))].sort((x, y) => x - y);
    const chunks: Buffer[] = [];
    let from = 0;
    for (const at of [...offsets, message.length]) {
      chunks.push(message.subarray(from, at));
      from = at;
    }
    return [message, chunks];
  });

describe('DotStuffing properties', () => {
  test('un-stuffing the output gives back the normalised message', () => {
    fc.assert(
      fc.property(chunked, ([message, chunks]) => {
        const output = stuff(chunks);
        const lines = crlfLines(output);
        for (const line of lines) {
          // A stuffed line never reads as the terminator and a dot line always carries two dots.
          if (line[0] === 0x2e) assert.equal(line[1], 0x2e, 'a line starting with a dot starts with two');
        }
        const unstuffed = Buffer.concat(lines.map((line) => (line[0] === 0x2e ? line.subarray(1) : line)));
        assert.deepEqual(unstuffed, normalise(message));
      }),
      { numRuns: 1000 },
    );
  });

  test('output length minus stuffed dots equals the MessageMeter size', () => {
    fc.assert(
      fc.property(chunked, ([message, chunks]) => {
        const output = stuff(chunks);
        const stuffedDots = crlfLines(output).filter((line) => line[0] === 0x2e).length;
        assert.equal(output.length - stuffedDots, measureMessage(message).size);
      }),
      { numRuns: 1000 },
    );
  });

  test('the output is the same for any chunking', () => {
    fc.assert(
      fc.property(chunked, ([message, chunks]) => {
        assert.deepEqual(stuff(chunks), stuff([message]));
      }),
      { numRuns: 1000 },
    );
  });
});
