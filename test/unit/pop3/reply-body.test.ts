import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import type { ChunkReader } from '../../../src/mailstore/types.js';
import { ReplyWriter } from '../../../src/pop3/reply.js';

/** A connected pair of loopback sockets: `server` writes, `received` resolves to all `client` got. */
async function socketPair(t: TestContext): Promise<{ server: Socket; received: Promise<Buffer> }> {
  const listener = createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const address = listener.address();
  assert.ok(address !== null && typeof address === 'object');
  const accepted = once(listener, 'connection') as Promise<[Socket]>;
  const client = connect(address.port, '127.0.0.1');
  const [server] = await accepted;
  listener.close();
  t.after(() => {
    client.destroy();
    server.destroy();
  });
  const received = (async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of client) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  })();
  return { server, received };
}

/**
 * A message stream that is also a ChunkReader: `chunks` handed out one per readInto, each copied
 * into the caller's buffer. Records the buffers it was given.
 */
function chunkReader(
  chunks: readonly Buffer[],
  chunkBytes: number,
): Readable & ChunkReader & { buffers: Buffer[] } {
  let next = 0;
  const buffers: Buffer[] = [];
  // As a stream it gives the same chunks: a writer that ignored readInto would still end.
  const stream = Object.assign(Readable.from(chunks), {
    chunkBytes,
    buffers,
    readInto(buffer: Buffer): Promise<number> {
      buffers.push(buffer);
      const chunk = chunks[next++];
      if (chunk === undefined) return Promise.resolve(0);
      return Promise.resolve(chunk.copy(buffer));
    },
  });
  return stream;
}

/** `count` distinct chunks of `size` bytes of CRLF lines (nothing to stuff), `A...`, `B...`, ... */
function distinctChunks(count: number, size: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const chunk = Buffer.alloc(size, String.fromCharCode(65 + (i % 26)));
    chunk.write('\r\n', size - 2);
    return chunk;
  });
}

for (const isVerbatim of [true, false]) {
  test(`a ChunkReader's buffer is not reused while the socket still holds it (held replies, isVerbatim ${String(isVerbatim)})`, async (t) => {
    const { server, received } = await socketPair(t);
    const writer = new ReplyWriter(server, 60_000);
    // Held (corked), as when pipelined commands wait: every write stays queued, pointing at its buffer.
    writer.hold();
    const chunks = distinctChunks(20, 512);
    const reader = chunkReader(chunks, 512);
    await writer.body('20 chunks', reader, isVerbatim);
    writer.release();
    server.end();
    assert.deepEqual(
      await received,
      Buffer.concat([Buffer.from('+OK 20 chunks\r\n'), ...chunks, Buffer.from('.\r\n')]),
    );
  });
}

test('a ChunkReader is read into one buffer while the socket takes every chunk at once', async (t) => {
  const { server, received } = await socketPair(t);
  const writer = new ReplyWriter(server, 60_000);
  const body = Buffer.from('Subject: x\n\n.dot line\nlone\rCR\r\nlast line');
  // Cut so that a dot line and a CRLF straddle the chunk boundaries.
  const chunks = [body.subarray(0, 12), body.subarray(12, 30), body.subarray(30)];
  const reader = chunkReader(chunks, 64);
  await writer.body('msg', reader);
  server.end();
  assert.equal(
    (await received).toString('latin1'),
    '+OK msg\r\nSubject: x\r\n\r\n..dot line\r\nlone\rCR\r\nlast line\r\n.\r\n',
  );
  assert.ok(reader.buffers.length === chunks.length + 1);
  assert.ok(
    reader.buffers.every((b) => b === reader.buffers[0]),
    'one buffer for every read when the socket is not behind',
  );
  assert.equal(reader.buffers[0]?.length, 64, "the buffer has the reader's chunkBytes");
});
