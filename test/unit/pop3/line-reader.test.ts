import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { LineReader, OVERLONG, type ReadLine } from '../../../src/pop3/line-reader.js';

// eslint-disable-next-line @typescript-eslint/require-await -- an async source, as a socket is
async function* chunksOf(chunks: readonly (string | Buffer)[]): AsyncGenerator<Buffer> {
  for (const c of chunks) yield typeof c === 'string' ? Buffer.from(c, 'latin1') : c;
}

async function collect(reader: LineReader): Promise<ReadLine[]> {
  const out: ReadLine[] = [];
  for await (const line of reader.lines()) out.push(line);
  return out;
}

/** Lines as latin1 strings (one char per byte), OVERLONG kept as is, for readable assertions. */
async function readAll(
  chunks: readonly (string | Buffer)[],
  maxLineBytes: number,
): Promise<(string | typeof OVERLONG)[]> {
  const lines = await collect(new LineReader(chunksOf(chunks), maxLineBytes));
  return lines.map((l) => (l === OVERLONG ? l : l.toString('latin1')));
}

describe('LineReader', () => {
  test('CRLF and a lone LF both end a line; the CR of CRLF is removed', async () => {
    assert.deepEqual(await readAll(['USER alice\r\nPASS pw\nQUIT\r\n'], 100), [
      'USER alice',
      'PASS pw',
      'QUIT',
    ]);
  });

  test('empty lines are yielded as empty buffers', async () => {
    assert.deepEqual(await readAll(['\r\n\n\r\n'], 100), ['', '', '']);
  });

  test('only one trailing CR is removed; a CR inside the line is data', async () => {
    assert.deepEqual(await readAll(['a\rb\r\n', 'c\r\r\n', '\r\n'], 100), ['a\rb', 'c\r', '']);
  });

  test('a line split across chunks is joined, including a CRLF split between chunks', async () => {
    assert.deepEqual(await readAll(['US', 'ER al', 'ice\r', '\nNO', 'OP\n'], 100), ['USER alice', 'NOOP']);
  });

  test('bytes are passed through unchanged (8-bit, NUL)', async () => {
    const lines = await collect(
      new LineReader(chunksOf([Buffer.from([0xff, 0x00, 0xc3, 0xa4, 0x0d, 0x0a])]), 10),
    );
    assert.deepEqual(lines, [Buffer.from([0xff, 0x00, 0xc3, 0xa4])]);
  });

  test('a partial last line (no LF) is dropped', async () => {
    assert.deepEqual(await readAll(['QUIT\r\nNOOP'], 100), ['QUIT']);
    assert.deepEqual(await readAll(['QUIT\r\nNOOP\r'], 100), ['QUIT']);
    assert.deepEqual(await readAll(['NOOP'], 100), []);
    assert.deepEqual(await readAll([], 100), []);
  });

  describe('the byte limit', () => {
    test('a line of exactly the limit is accepted, with LF or CRLF', async () => {
      assert.deepEqual(await readAll(['abcde\n', 'fghij\r\n'], 5), ['abcde', 'fghij']);
    });

    test('a line one byte over the limit is OVERLONG, with LF or CRLF', async () => {
      assert.deepEqual(await readAll(['abcdef\nok\n'], 5), [OVERLONG, 'ok']);
      assert.deepEqual(await readAll(['abcdef\r\nok\r\n'], 5), [OVERLONG, 'ok']);
    });

    test('at the limit and one over, split at every byte offset', async () => {
      for (const input of ['abcde\r\nxyz\r\n', 'abcdef\r\nxyz\r\n', 'abcdef\nxyz\n', 'abcde\nxyz\n']) {
        const expected = input.startsWith('abcdef') ? [OVERLONG, 'xyz'] : ['abcde', 'xyz'];
        for (let i = 0; i <= input.length; i++) {
          assert.deepEqual(
            await readAll([input.slice(0, i), input.slice(i)], 5),
            expected,
            `${JSON.stringify(input)} split at ${i}`,
          );
        }
        assert.deepEqual(
          await readAll(input.split(''), 5),
          expected,
          `${JSON.stringify(input)} byte by byte`,
        );
      }
    });

    test('an overlong line yields OVERLONG once and the reader stays in step', async () => {
      assert.deepEqual(await readAll(['NOOP\r\n', 'x'.repeat(50), '\r\nQUIT\r\n'], 10), [
        'NOOP',
        OVERLONG,
        'QUIT',
      ]);
    });

    test('an overlong line spanning many chunks yields OVERLONG once', async () => {
      const chunks = ['USER a\r\n', ...Array.from({ length: 100 }, () => 'y'.repeat(7)), 'yy\r\nPASS b\r\n'];
      assert.deepEqual(await readAll(chunks, 20), ['USER a', OVERLONG, 'PASS b']);
    });

    test('an overlong line followed directly by an empty line and more lines', async () => {
      assert.deepEqual(await readAll(['0123456789ab', 'cdef\n\nnext\n'], 8), [OVERLONG, '', 'next']);
    });

    test('two overlong lines in a row give two OVERLONGs', async () => {
      assert.deepEqual(await readAll(['aaaaaaaaaa\nbbbbbbbbbb\nc\n'], 3), [OVERLONG, OVERLONG, 'c']);
      assert.deepEqual(await readAll(['aaaaaaaaaa', '\nbbbbbbbbbb', '\nc\n'], 3), [OVERLONG, OVERLONG, 'c']);
    });

    test('an overlong partial last line is dropped without OVERLONG', async () => {
      assert.deepEqual(await readAll(['ok\n', 'z'.repeat(100)], 10), ['ok']);
    });

    test('the limit can be changed between lines', async () => {
      const reader = new LineReader(
        chunksOf(['short\r\n', 'a much longer line\r\n', 'a much longer line\r\n']),
        5,
      );
      const seen: ReadLine[] = [];
      for await (const line of reader.lines()) {
        seen.push(line);
        if (seen.length === 1) reader.maxLineBytes = 100;
        if (seen.length === 2) reader.maxLineBytes = 5;
      }
      assert.deepEqual(
        seen.map((l) => (l === OVERLONG ? l : l.toString())),
        ['short', 'a much longer line', OVERLONG],
      );
    });

    test('a raised limit applies to a line whose first bytes are already buffered', async () => {
      // The second line arrives in the same chunk as the first; the limit is raised before it is read.
      const reader = new LineReader(chunksOf(['AUTH\r\nAAAAAAAAAAAAAAAA', 'AAAA\r\n']), 8);
      const seen: ReadLine[] = [];
      for await (const line of reader.lines()) {
        seen.push(line);
        reader.maxLineBytes = 64;
      }
      assert.deepEqual(
        seen.map((l) => (l === OVERLONG ? l : l.toString())),
        ['AUTH', 'A'.repeat(20)],
      );
    });

    test('a 10 MB line without LF is not held in memory; the next line is read afterwards', async () => {
      // Count how many of the line's chunks the reader keeps alive while it is in the middle of the
      // long line: the source checks, after a full GC, just before it sends the line end. The
      // ArrayBuffers are watched, not the Buffers, since a reader might keep views of them.
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      const chunkBytes = 64 * 1024;
      const chunkCount = 160; // 10 MiB
      const sent: WeakRef<ArrayBufferLike>[] = [];
      let aliveChunks = Number.NaN;
      async function* source(): AsyncGenerator<Buffer> {
        yield Buffer.from('NOOP\r\n');
        for (let i = 0; i < chunkCount; i++) {
          const chunk = Buffer.alloc(chunkBytes, 0x41); // not pooled: one ArrayBuffer each
          sent.push(new WeakRef(chunk.buffer));
          yield chunk;
        }
        // A macrotask boundary, so that WeakRef targets are no longer kept for the current job.
        await new Promise<void>((resolve) => setImmediate(resolve));
        gc();
        aliveChunks = sent.filter((ref) => ref.deref() !== undefined).length;
        yield Buffer.from('\r\nQUIT\r\n');
      }
      const lines = await collect(new LineReader(source(), 1024));
      assert.deepEqual(
        lines.map((l) => (l === OVERLONG ? l : l.toString())),
        ['NOOP', OVERLONG, 'QUIT'],
      );
      // The limit (1 KiB) is far below one chunk: at most the chunk in hand may still be referenced.
      assert.ok(aliveChunks <= 2, `reader kept ${aliveChunks} of ${chunkCount} chunks of a 10 MiB line`);
    });
  });

  test('a line sent one byte per chunk keeps none of its chunks: the bytes are copied', async () => {
    // Security probe finding 4: a client that sends its line one byte per TCP segment. Each byte
    // arrives as a view into a 64 KiB ArrayBuffer (as a socket's read may); a reader that kept the
    // views would keep 64 KiB per byte. After a full GC just before the LF, at most the chunk in hand
    // may be alive.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const lineBytes = 1000;
    const sent: WeakRef<ArrayBufferLike>[] = [];
    let aliveChunks = Number.NaN;
    async function* oneBytePerChunk(): AsyncGenerator<Buffer> {
      for (let i = 0; i < lineBytes; i++) {
        const backing = Buffer.alloc(64 * 1024, 0x41); // not pooled: one ArrayBuffer each
        sent.push(new WeakRef(backing.buffer));
        yield backing.subarray(i % 100, (i % 100) + 1);
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
      gc();
      aliveChunks = sent.filter((ref) => ref.deref() !== undefined).length;
      yield Buffer.from('\r\nQUIT\r\n');
    }
    const lines = await collect(new LineReader(oneBytePerChunk(), 1024));
    assert.deepEqual(
      lines.map((l) => (l === OVERLONG ? l : l.toString())),
      ['A'.repeat(lineBytes), 'QUIT'],
    );
    assert.ok(aliveChunks <= 1, `reader kept ${aliveChunks} of ${lineBytes} one-byte chunks`);
  });

  test('property: any lines, any chunk split, give the same lines', async () => {
    const line = fc
      .uint8Array({ maxLength: 30 })
      .map((bytes) => Buffer.from(bytes.filter((b) => b !== 0x0a)));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(line, fc.boolean()), { maxLength: 20 }),
        line,
        fc.array(fc.nat(), { maxLength: 10 }),
        fc.integer({ min: 0, max: 40 }),
        async (lines, partial, cuts, maxLineBytes) => {
          const parts: Buffer[] = [];
          const expected: (Buffer | typeof OVERLONG)[] = [];
          for (const [content, isCrlf] of lines) {
            parts.push(content, Buffer.from(isCrlf ? '\r\n' : '\n'));
            // With CRLF the CR is the one removed; with a lone LF a CR at the end of the content is.
            const hasTrailingCR = !isCrlf && content.length > 0 && content[content.length - 1] === 0x0d;
            const kept = hasTrailingCR ? content.subarray(0, content.length - 1) : content;
            expected.push(kept.length > maxLineBytes ? OVERLONG : kept);
          }
          parts.push(partial); // no LF: dropped
          const stream = Buffer.concat(parts);
          const offsets = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let from = 0;
          for (const at of [...offsets, stream.length]) {
            chunks.push(stream.subarray(from, at));
            from = at;
          }
          const got = await collect(new LineReader(chunksOf(chunks), maxLineBytes));
          assert.deepEqual(got, expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});
