import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { MessageMeter, measureMessage, type MessageMeasure } from '../../../src/message/octets.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

function meterChunks(chunks: readonly Uint8Array[]): MessageMeasure {
  const meter = new MessageMeter();
  for (const chunk of chunks) meter.push(chunk);
  return meter.finish();
}

// Sizes counted by hand: every LF without a CR before it counts 2, a missing final line end adds
// CRLF (or just LF after a trailing CR), a lone CR is one byte of data.
const FIXTURES: readonly { name: string; input: Buffer; size: number; isVerbatim: boolean }[] = [
  { name: 'LF only', input: b('a\nb\n'), size: 6, isVerbatim: false },
  { name: 'CRLF only', input: b('a\r\nb\r\n'), size: 6, isVerbatim: true },
  { name: 'mixed, no final newline', input: b('a\r\nb\nc'), size: 9, isVerbatim: false },
  { name: 'no final newline', input: b('abc'), size: 5, isVerbatim: false },
  { name: 'CRLF lines, last without line end', input: b('a\r\nb'), size: 6, isVerbatim: false },
  { name: 'lone CR inside a line', input: b('a\rb'), size: 5, isVerbatim: false },
  { name: 'lone CR inside a CRLF line is data', input: b('a\rb\r\n'), size: 5, isVerbatim: true },
  { name: 'trailing lone CR', input: b('a\r'), size: 3, isVerbatim: false },
  { name: 'only a CR', input: b('\r'), size: 2, isVerbatim: false },
  { name: 'only an LF', input: b('\n'), size: 2, isVerbatim: false },
  { name: 'only CRLF', input: b('\r\n'), size: 2, isVerbatim: true },
  { name: 'CR CR LF', input: b('a\r\r\n'), size: 4, isVerbatim: true },
  { name: 'LF LF', input: b('\n\n'), size: 4, isVerbatim: false },
  // Empty: RETR sends nothing before the terminating dot, which is exactly what is stored.
  { name: 'empty', input: b(''), size: 0, isVerbatim: true },
  { name: '8-bit bytes, LF', input: Buffer.from([0xc3, 0xa4, 0x0a]), size: 4, isVerbatim: false },
  {
    name: '8-bit bytes and NUL, CRLF',
    input: Buffer.from([0xff, 0x00, 0x80, 0x0d, 0x0a]),
    size: 5,
    isVerbatim: true,
  },
  { name: 'first line starts with a dot', input: b('.a\r\n'), size: 4, isVerbatim: false },
  { name: 'later line starts with a dot', input: b('a\r\n.b\r\n'), size: 7, isVerbatim: false },
  { name: 'last line is a dot without line end', input: b('\r\n.'), size: 5, isVerbatim: false },
  { name: 'dot not at line start', input: b('a.\r\n a\r\n'), size: 8, isVerbatim: true },
  { name: 'dot after a lone CR is not at line start', input: b('a\r.b\r\n'), size: 6, isVerbatim: true },
  { name: 'typical Maildir message', input: b('Subject: x\n\nHello\n'), size: 21, isVerbatim: false },
];

describe('measureMessage', () => {
  for (const { name, input, size, isVerbatim } of FIXTURES) {
    test(name, () => {
      assert.deepEqual(measureMessage(input), { size, storedBytes: input.length, isVerbatim });
    });
  }
});

describe('MessageMeter', () => {
  for (const { name, input, size, isVerbatim } of FIXTURES) {
    test(`${name}: the same for every split offset and byte by byte`, () => {
      const expected = { size, storedBytes: input.length, isVerbatim };
      for (let i = 0; i <= input.length; i++) {
        assert.deepEqual(meterChunks([input.subarray(0, i), input.subarray(i)]), expected, `split at ${i}`);
      }
      assert.deepEqual(meterChunks([...input].map((byte) => Uint8Array.of(byte))), expected);
    });
  }

  test('a dot after a chunk that ends with LF is at line start', () => {
    assert.equal(meterChunks([b('a\r\n'), b('.b\r\n')]).isVerbatim, false);
  });

  test('an LF after a chunk that ends with CR adds nothing', () => {
    assert.deepEqual(meterChunks([b('a\r'), b('\n')]), { size: 3, storedBytes: 3, isVerbatim: true });
  });

  test('an LF after a chunk that does not end with CR counts as CRLF', () => {
    assert.deepEqual(meterChunks([b('a'), b('\n')]), { size: 3, storedBytes: 2, isVerbatim: false });
  });

  test('empty chunks change nothing', () => {
    assert.deepEqual(meterChunks([b(''), b('a\r'), b(''), b('\n'), b('')]), {
      size: 3,
      storedBytes: 3,
      isVerbatim: true,
    });
  });

  test('accepts plain Uint8Arrays', () => {
    assert.deepEqual(meterChunks([new Uint8Array([0x61, 0x0a])]), {
      size: 3,
      storedBytes: 2,
      isVerbatim: false,
    });
  });

  test('property: any split gives the same measure as the whole', () => {
    const bytes = fc.array(fc.constantFrom(0x0d, 0x0a, 0x2e, 0x61, 0xff), { maxLength: 50 });
    fc.assert(
      fc.property(bytes, fc.array(fc.nat(), { maxLength: 6 }), (arr, cuts) => {
        const input = Buffer.from(arr);
        const offsets = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((x, y) => x - y);
        const chunks: Buffer[] = [];
        let from = 0;
        for (const at of [...offsets, input.length]) {
          chunks.push(input.subarray(from, at));
          from = at;
        }
        assert.deepEqual(meterChunks(chunks), measureMessage(input));
      }),
      { numRuns: 500 },
    );
  });

  test('property: size counts one extra byte per bare LF plus the missing final line end', () => {
    const bytes = fc.array(fc.constantFrom(0x0d, 0x0a, 0x2e, 0x61), { maxLength: 50 });
    fc.assert(
      fc.property(bytes, (arr) => {
        let bareLf = 0;
        arr.forEach((byte, i) => {
          if (byte === 0x0a && (i === 0 || arr[i - 1] !== 0x0d)) bareLf += 1;
        });
        const last = arr[arr.length - 1];
        const tail = last === undefined || last === 0x0a ? 0 : last === 0x0d ? 1 : 2;
        assert.equal(measureMessage(Uint8Array.from(arr)).size, arr.length + bareLf + tail);
      }),
      { numRuns: 500 },
    );
  });
});
