import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { LineReader, OVERLONG, type ReadLine } from '../../../src/pop3/line-reader.js';
import { chunked } from '../../helpers/chunked.js';

// Hostile input (issue 6): for any byte stream cut into any chunks, and any limit, the reader
// yields exactly the stream's lines (split at LF, one CR before the LF removed), OVERLONG for a
// line over the limit and then the next line as usual, holds a bounded amount of memory, and ends
// when its source ends.

const LF = 0x0a;
const CR = 0x0d;

/** Lines as comparable values: OVERLONG, or the bytes in hex (readable in a counterexample). */
type Seen = 'OVERLONG' | `line:${string}`;
const seen = (line: ReadLine): Seen => (line === OVERLONG ? 'OVERLONG' : `line:${line.toString('hex')}`);

/** The model: what the reader must yield for these bytes, line by line, each with its own limit. */
function expectedLines(input: Buffer, limitOf: (index: number) => number): Seen[] {
  const out: Seen[] = [];
  let start = 0;
  for (let nl = input.indexOf(LF); nl !== -1; nl = input.indexOf(LF, start)) {
    const end = nl > start && input[nl - 1] === CR ? nl - 1 : nl;
    out.push(end - start > limitOf(out.length) ? 'OVERLONG' : seen(input.subarray(start, end)));
    start = nl + 1;
  }
  return out;
}

// eslint-disable-next-line @typescript-eslint/require-await -- an async source, as a socket is
async function* source(chunks: readonly Buffer[]): AsyncGenerator<Buffer> {
  for (const chunk of chunks) yield chunk;
}

async function readAll(chunks: readonly Buffer[], maxLineBytes: number): Promise<ReadLine[]> {
  const lines: ReadLine[] = [];
  for await (const line of new LineReader(source(chunks), maxLineBytes).lines()) lines.push(line);
  return lines;
}

/**
 * Byte streams heavy in line ends, with runs long enough to cross any limit: short random pieces,
 * and runs of one byte repeated up to a few thousand times.
 */
const streamArb = fc
  .array(
    fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .array(
            fc.oneof(
              { weight: 1, arbitrary: fc.constantFrom(LF, CR) },
              { weight: 3, arbitrary: fc.nat(255) },
            ),
            { maxLength: 40 },
          )
          .map((bytes) => Buffer.from(bytes)),
      },
      {
        weight: 1,
        arbitrary: fc
          .tuple(
            fc.oneof(fc.constantFrom(CR, 0x41, 0x00, 0xff), fc.nat(255)),
            fc.integer({ min: 1, max: 3000 }),
          )
          .map(([byte, count]) => Buffer.alloc(count, byte)),
      },
      {
        weight: 1,
        arbitrary: fc.constantFrom('\r\n', '\n', '\r', '\r\r\n', '\n\n').map((s) => Buffer.from(s)),
      },
    ),
    { maxLength: 30 },
  )
  .map((parts) => Buffer.concat(parts));

const limitArb = fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 4000 }));
const cutsArb = fc.array(fc.nat(), { maxLength: 20 });

describe('LineReader on hostile input', () => {
  test('any bytes, any chunks, any limit: exactly the lines of the stream, OVERLONG above the limit', async () => {
    await fc.assert(
      fc.asyncProperty(streamArb, cutsArb, limitArb, async (stream, cuts, limit) => {
        const got = (await readAll(chunked(stream, cuts), limit)).map(seen);
        assert.deepEqual(
          got,
          expectedLines(stream, () => limit),
        );
      }),
      { numRuns: 300 },
    );
  });

  test('chunking never changes the result: whole, random pieces and byte by byte agree', async () => {
    await fc.assert(
      fc.asyncProperty(
        streamArb.filter((s) => s.length <= 3000),
        cutsArb,
        limitArb,
        async (stream, cuts, limit) => {
          const whole = (await readAll([stream], limit)).map(seen);
          assert.deepEqual((await readAll(chunked(stream, cuts), limit)).map(seen), whole, 'random pieces');
          const bytes = [...stream].map((b) => Buffer.from([b]));
          assert.deepEqual((await readAll(bytes, limit)).map(seen), whole, 'byte by byte');
        },
      ),
      { numRuns: 100 },
    );
  });

  test('no line is ever longer than the limit, and none contains an LF', async () => {
    await fc.assert(
      fc.asyncProperty(streamArb, cutsArb, limitArb, async (stream, cuts, limit) => {
        for (const line of await readAll(chunked(stream, cuts), limit)) {
          if (line === OVERLONG) continue;
          assert.ok(line.length <= limit, `a line of ${line.length} bytes with a limit of ${limit}`);
          assert.equal(line.indexOf(LF), -1);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('an overlong line of any length yields one OVERLONG, and the reader stays in step', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 1, max: 200_000 }),
        fc.constantFrom('\n', '\r\n'),
        fc.integer({ min: 1, max: 70_000 }),
        async (limit, extra, end, chunkBytes) => {
          const long = Buffer.alloc(limit + extra, 0x58);
          const stream = Buffer.concat([Buffer.from('NOOP\r\n'), long, Buffer.from(`${end}QUIT\r\n`)]);
          const chunks: Buffer[] = [];
          for (let at = 0; at < stream.length; at += chunkBytes)
            chunks.push(stream.subarray(at, at + chunkBytes));
          const expected =
            limit >= 4 ? ['line:NOOP', 'OVERLONG', 'line:QUIT'] : ['OVERLONG', 'OVERLONG', 'OVERLONG'];
          const got = (await readAll(chunks, limit)).map((l) =>
            l === OVERLONG ? 'OVERLONG' : `line:${l.toString('latin1')}`,
          );
          assert.deepEqual(got, expected);
        },
      ),
      { numRuns: 60 },
    );
  });

  test('a limit changed between lines applies to the next line, even one already buffered', async () => {
    await fc.assert(
      fc.asyncProperty(
        streamArb,
        cutsArb,
        fc.array(limitArb, { minLength: 1, maxLength: 40 }),
        async (stream, cuts, limits) => {
          const limitOf = (index: number): number => limits[index % limits.length] ?? 0;
          const reader = new LineReader(source(chunked(stream, cuts)), limitOf(0));
          const got: Seen[] = [];
          for await (const line of reader.lines()) {
            got.push(seen(line));
            reader.maxLineBytes = limitOf(got.length);
          }
          assert.deepEqual(got, expectedLines(stream, limitOf));
        },
      ),
      { numRuns: 200 },
    );
  });

  test('the generator ends when the source ends, wherever that is (mid-line, mid-overlong, at a CR)', async () => {
    await fc.assert(
      fc.asyncProperty(streamArb, cutsArb, limitArb, async (stream, cuts, limit) => {
        const expected = expectedLines(stream, () => limit);
        const lines = new LineReader(source(chunked(stream, cuts)), limit).lines();
        for (let i = 0; i < expected.length; i++) {
          const next = await lines.next();
          assert.equal(next.done, false, `line ${i + 1} of ${expected.length}`);
        }
        // Then done, and done again: nothing is left hanging, nothing more is invented.
        assert.deepEqual(await lines.next(), { done: true, value: undefined });
        assert.deepEqual(await lines.next(), { done: true, value: undefined });
      }),
      { numRuns: 200 },
    );
  });

  test('a node stream as the source gives the same lines', async () => {
    await fc.assert(
      fc.asyncProperty(streamArb, cutsArb, limitArb, async (stream, cuts, limit) => {
        const readable = Readable.from(chunked(stream, cuts).filter((c) => c.length > 0));
        const got: Seen[] = [];
        for await (const line of new LineReader(readable, limit).lines()) got.push(seen(line));
        assert.deepEqual(
          got,
          expectedLines(stream, () => limit),
        );
      }),
      { numRuns: 100 },
    );
  });

  test('stopping early closes the source, and an error from the source comes out unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(
        streamArb,
        cutsArb,
        limitArb,
        fc.nat(),
        fc.boolean(),
        async (stream, cuts, limit, stopAt, wantsError) => {
          const chunks = chunked(stream, cuts);
          const expected = expectedLines(stream, () => limit);
          // Without lines to stop at, the source has to end somehow: with an error.
          const isError = wantsError || expected.length === 0;
          let isClosed = false;
          const failure = new Error('the socket broke');
          // eslint-disable-next-line @typescript-eslint/require-await -- an async source, as a socket is
          async function* watched(): AsyncGenerator<Buffer> {
            try {
              yield* chunks;
              if (isError) throw failure;
              // Like an open socket, this source never ends on its own: only closing it stops it.
              for (;;) yield Buffer.alloc(0);
            } finally {
              isClosed = true;
            }
          }
          const got: Seen[] = [];
          if (isError) {
            await assert.rejects(
              async () => {
                for await (const line of new LineReader(watched(), limit).lines()) got.push(seen(line));
              },
              (error: unknown) => error === failure,
              'the source error comes out as it was thrown',
            );
            assert.deepEqual(got, expected, 'every line before the error');
          } else {
            const stop = stopAt % expected.length;
            for await (const line of new LineReader(watched(), limit).lines()) {
              if (got.length === stop) break;
              got.push(seen(line));
            }
            assert.deepEqual(got, expected.slice(0, stop));
          }
          assert.ok(isClosed, 'the source was closed');
        },
      ),
      { numRuns: 200 },
    );
  });

  test('memory held in a long line stays within the limit and a few chunks, however it is cut', async () => {
    // Which chunks the reader still keeps alive, seen after a full GC just before the line ends: a
    // reader that kept the line, or kept views of its chunks, would keep them all.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 4096 }),
        fc.integer({ min: 256, max: 16_384 }),
        fc.integer({ min: 0, max: 255 }),
        async (limit, chunkBytes, lead) => {
          const bound = limit + 1 + 3 * chunkBytes;
          const chunkCount = Math.ceil((4 * bound) / chunkBytes);
          const sent: { ref: WeakRef<ArrayBufferLike>; bytes: number }[] = [];
          let aliveBytes = Number.NaN;
          async function* longLine(): AsyncGenerator<Buffer> {
            yield Buffer.from('NOOP\r\n');
            for (let i = 0; i < chunkCount; i++) {
              // Not pooled: one ArrayBuffer per chunk. The first one starts part-way into the line.
              const chunk = Buffer.alloc(i === 0 ? chunkBytes - lead : chunkBytes, 0x41);
              sent.push({ ref: new WeakRef(chunk.buffer), bytes: chunk.buffer.byteLength });
              yield chunk;
            }
            // A macrotask boundary, so that WeakRef targets are no longer kept for the current job.
            await new Promise<void>((resolve) => setImmediate(resolve));
            gc();
            aliveBytes = sent.reduce((sum, s) => sum + (s.ref.deref() === undefined ? 0 : s.bytes), 0);
            yield Buffer.from('\r\nQUIT\r\n');
          }
          const got: Seen[] = [];
          for await (const line of new LineReader(longLine(), limit).lines()) got.push(seen(line));
          const noop = limit >= 4 ? seen(Buffer.from('NOOP')) : 'OVERLONG';
          const quit = limit >= 4 ? seen(Buffer.from('QUIT')) : 'OVERLONG';
          assert.deepEqual(got, [noop, 'OVERLONG', quit]);
          assert.ok(
            aliveBytes <= bound,
            `kept ${aliveBytes} bytes of a ${chunkCount * chunkBytes}-byte line (limit ${limit}, chunks of ${chunkBytes})`,
          );
        },
      ),
      { numRuns: 25 },
    );
  });
});
